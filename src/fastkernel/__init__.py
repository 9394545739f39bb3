"""fastkernel: a fast, hardened Jupyter kernel for Python, written from scratch."""

__version__ = "0.1.0"
PROTOCOL_VERSION = "5.5"
