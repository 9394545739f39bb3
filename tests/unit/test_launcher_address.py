"""Where a kernel in launcher mode binds (transport/launcher.py reached_address)."""

from __future__ import annotations

from fastkernel.transport.launcher import reached_address

GATEWAY = ("127.0.0.1", 8877)


def test_over_ssh_the_address_the_connection_came_in_on() -> None:
    environ = {"SSH_CONNECTION": "10.0.0.5 51234 10.0.0.9 22"}
    assert reached_address(GATEWAY, environ, ppid=1234) == "10.0.0.9"


def test_started_by_jupyter_on_the_gateways_host_every_interface() -> None:
    # The distributed provisioner's local case: it connects to the address its host list names.
    environ = {"JPY_PARENT_PID": "1234", "SSH_CONNECTION": "10.0.0.5 51234 10.0.0.9 22"}
    assert reached_address(GATEWAY, environ, ppid=1234) == "0.0.0.0"


def test_a_jpy_parent_pid_that_is_not_the_parent_is_not_trusted() -> None:
    # Inherited from some earlier process (a container image's entry point script sets one).
    assert reached_address(GATEWAY, {"JPY_PARENT_PID": "99"}, ppid=1234) == "127.0.0.1"


def test_elsewhere_the_address_that_routes_to_the_gateway() -> None:
    assert reached_address(GATEWAY, {}, ppid=1234) == "127.0.0.1"
    assert reached_address(("127.0.0.3", 8877), {}, ppid=1234).startswith("127.")
