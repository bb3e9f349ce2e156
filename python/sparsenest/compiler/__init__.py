"""Compiler: bundle -> Q15 nested-sparse C."""
