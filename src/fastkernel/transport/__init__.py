"""The transport: the only code that imports zmq or starts threads (see server.py)."""
