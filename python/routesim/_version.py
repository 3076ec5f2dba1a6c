"""The package version; it must equal the library's (rs_version) and the
Makefile's VERSION."""

__version__ = "0.1.0"
