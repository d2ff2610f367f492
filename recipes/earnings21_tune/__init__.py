"""The Earnings-21 tuning split: entity-bearing sentences disjoint from the dev benchmark
(its sentences and its entities) and from the default model's training sentences, for
choosing decoder defaults (``select``); see README.md beside this file. Never report
results on it."""
