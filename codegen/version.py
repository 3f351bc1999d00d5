"""Version of the generator, stamped into every generated module."""

GENERATOR_VERSION = "0.1.0"
