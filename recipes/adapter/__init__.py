"""How the bundled contextual adapter was made: ``prepare`` (name-dense training speech),
then ``ctc-biasing train-adapter`` (see ``recipes/adapter/README.md``)."""
