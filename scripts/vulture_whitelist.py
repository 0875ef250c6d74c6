"""Names vulture (the unused-code check in `scripts/dev.sh test`) cannot see used: something outside the code
calls or reads them by name. Vulture only reads this file; nothing runs it. A new entry needs its reason.
"""

# ruff: noqa
_ = object()

# Written out with dataclasses.asdict (bench.json, throughput.json): read by people and by benchmarks/.
_.steady_steps  # throughput/metrics.py RunResult
_.real_token_fraction  # throughput/metrics.py RunResult
_.decision_notes  # throughput/metrics.py RunResult
_.real_tokens_per_s  # cost/table.py Measurement

# Click and Typer call these by name.
_root  # cli/app.py: the app's callback (--version), registered by @app.callback()
_.context_class  # cli/options.py, cli/help_format.py: Click's classes for a command's context and formatter
_.formatter_class
_.format_arguments  # cli/options.py: Click's help-page hooks, overridden
_.format_commands
_.__signature__  # cli/options.py takes_run_options: Typer reads a command's options off these
_.__annotations__

# Libraries read these attributes after we set them.
_.initial_indent  # cli/help_format.py: textwrap.TextWrapper
_.subsequent_indent
_.pre_tokenizer  # tiny_model.py, tests/cli/test_hub_integrity.py: tokenizers.Tokenizer
_.post_processor

# LLaMA-Factory reads it after train/patches/cutoff_2025.py sets it (DataArguments.cutoff_len).
_.cutoff_len

# The context-manager protocol: __exit__(exc_type, exc, tb).
tb  # data/registry/transaction.py

# pytest calls these by name: a hook, autouse fixtures, and a fixture asked for only for what it sets up.
pytest_collection_modifyitems  # tests/conftest.py
_unit_tests_start_no_process  # tests/conftest.py
_isolated_env  # tests/conftest.py
_fresh_cache  # tests/unit/test_data_hashing.py
_own_cache  # tests/unit/test_tokenized_cache.py
llama_tokenizer  # tests/cli/test_estimate_cli.py

# http.server calls a request handler's methods and reads its settings by name (tests/hubstub.py, tests/judgestub.py).
_.protocol_version
_.log_message
_.close_connection
_.do_GET
_.do_HEAD
_.do_POST
_.do_PUT
_.daemon_threads
