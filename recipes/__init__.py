"""Developer recipes: how the bundled model, the example clips and the dev benchmark were made.

Run them from the repository root as modules, e.g. ``python -m recipes.default_model.train
RUN``; they are not installed with the package. They read the development data from
``biasing.paths.shared_root()`` (``$CTC_BIASING_SHARED`` or ``../shared``) and write under
``biasing.paths.cache_root()`` (``$CTC_BIASING_CACHE`` or ``~/.cache/ctc-biasing``).

- :mod:`recipes.common`: training data, augmentation, batching, CTC loss, error rates;
- :mod:`recipes.default_model`: ``prepare``, ``train`` (stage 1), ``train_heads`` (stage 2),
  ``train_top`` (stage 3), ``export``, ``report``;
- :mod:`recipes.earnings21_dev`: the Earnings-21 dev benchmark's sentence selection;
- :mod:`recipes.earnings21_tune` and :mod:`recipes.names_tune`: the tuning split that
  decoder defaults are chosen on (never reported);
- :mod:`recipes.dev_lm`: the development KenLM model;
- :mod:`recipes.examples`: the example clips and the synthetic decode example.
"""
