"""The family modules of built-in spec declarations; conformance.catalog lists them."""
