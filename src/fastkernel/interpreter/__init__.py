"""The exec-based interpreter: no zmq, no messages, no threads of its own (see core.py)."""
