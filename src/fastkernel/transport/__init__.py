"""The transport: the only code that imports zmq or starts threads.

Threading model (keep this true when changing anything here):

======================  ==================  ===============================================
thread                  owns                does
======================  ==================  ===============================================
main                    shell, stdin        receives shell requests and runs their handlers,
                                            so user code runs on the main thread and SIGINT
                                            raises KeyboardInterrupt in it; sends shell
                                            replies; uses stdin for ``input()``. While
                                            idle it also runs the user's asyncio loop (once
                                            a cell made one), so cells' tasks keep running,
                                            and the core's ``on_idle`` work: finishing the
                                            kernel's start after the first reply, writing
                                            the input history to SQLite, batched.
fastkernel-control      control             (control.py) receives control requests
                                            (interrupt, shutdown, kernel_info, ...) and
                                            answers them, even while a cell runs on the main
                                            thread. Also checks once a second that the
                                            process that launched the kernel lives
                                            (lifecycle.ParentWatch) and stops the kernel
                                            when it is gone; if the main thread has not
                                            stopped ``ORPHAN_EXIT_S`` later, it ends the
                                            process.
fastkernel-iopub        iopub (XPUB)        (iopub.py) sends every iopub message, in the
                                            order they were queued; answers each new
                                            subscription with ``iopub_welcome``; runs timed
                                            flushes of coalesced stream output.
fastkernel-heartbeat    hb, on its own      (heartbeat.py) echoes heartbeats inside libzmq
                        zmq.Context         (``zmq.proxy_steerable``), so it answers while
                                            Python holds the GIL. Started first, right
                                            after the sockets are bound.
fastkernel-shell        shell, once a        (subshells.py) only once a subshell was
                        subshell exists     created: takes the shell socket over from the
                                            main thread and routes requests by
                                            ``subshell_id`` to the main thread's inbox or a
                                            subshell's queue; sends every shell reply.
fastkernel-subshell-ID  nothing             (subshells.py) one per subshell: runs that
                                            subshell's requests from its queue, in order,
                                            beside the main thread and the others.
fastkernel-control-     nothing             (subshells.py) only once control got a request
worker                                      that runs user code (execute_request; ipykernel
                                            serves shell requests on control too): runs
                                            them in order, like a subshell; its replies go
                                            out through the control thread.
fastkernel-debugpy      a TCP connection    (daplink.py) only once a debug_request started
                        to debugpy's        the debugger: reads DAP responses and events
                        adapter             from debugpy's adapter, hands responses to the
                                            control thread's waiting request and events to
                                            the core (``debug_event`` on iopub). The control
                                            thread sends on the connection; so it never
                                            waits on the main thread, which may be stopped
                                            at a breakpoint. debugpy adds threads of its
                                            own; the kernel's threads (all but those that
                                            run user code: subshells, the control worker)
                                            are marked so that it neither traces nor stops
                                            them (``hide_from_debugger``).
fastkernel-commport     the comm port's     (commport.py) launcher mode only (launcher.py):
                        listening TCP       takes the gateway's requests, one JSON object
                        socket              per connection: the liveness poll, interrupt
                                            (``interrupt_main``), signals, shutdown
                                            (``stop_soon``). Closes the socket as the
                                            kernel ends, so the gateway's next poll is
                                            refused.
fastkernel-fdcapture    the read ends of    (fdcapture.py) only with fd capture on: reads
                        the fd 1 and fd 2   what subprocesses and C code write to fds 1 and
                        pipes               2 and hands it to the stream coalescer; answers
                                            drain barriers before each reply. Started by
                                            the core when it builds its runtime.
======================  ==================  ===============================================

No socket is touched by any thread but its owner. Other threads hand iopub messages to the
iopub thread (see iopub.py for batching and backpressure).

Interrupts: SIGINT is handled on the main thread by :class:`InterruptGate` (interrupts.py),
which raises KeyboardInterrupt only while user code runs, and holds it while user code is
inside kernel code that must not be cut in half (the stdin socket's multipart sends and
receives in ``input()``); the control thread's ``interrupt_request`` signals the main thread
first, then the kernel's descendants in its process group (see docs/reliability.md).
"""
