"""The two stages of the pipeline: clicks -> state -> scoring requests (`stateful`, run by an engine
in `engines/`), and scoring requests -> recommendations (`scoring`)."""
