"""Subcommands of the ``pyramidpose`` CLI, one module each, each with ``main(argv) -> int``.

Keep module-level imports light (no torch): a module is imported only when its command runs, but
``pyramidpose eval`` in particular must start fast.
"""
