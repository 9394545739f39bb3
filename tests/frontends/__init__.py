"""Real frontends (jupyter_kernel_test, jupyter console, jupyter server) against fastkernel."""
