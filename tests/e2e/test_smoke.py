from tests.harness import KernelHarness


def test_execute_prints_and_returns_result(kernel: KernelHarness) -> None:
    ex = kernel.execute("print('hi'); 1 + 1")
    assert ex.content["status"] == "ok"
    assert ex.types == ["status", "execute_input", "stream", "execute_result", "status"]
    assert ex.stream_text() == "hi\n"
    assert ex.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "2"
