"""The Earnings-21 dev benchmark: entity-dense sentences selected from the Earnings-21
transcripts (``select``); see README.md beside this file."""
