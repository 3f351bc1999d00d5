"""A seed-era DataSender subclass, driven through its FSM, streaming to a DataReceiver."""

from daqwire.constellation import DataReceived, DataReceiver, DataSender, RunEnded


class Counter(DataSender):
    """Queues a counter until stopped, as a seed-era satellite's do_run does."""

    def do_starting(self, run_identifier: str) -> str:
        self.BOR = {"counter": "start", "run": run_identifier}  # the BOR payload
        return "Starting"

    def do_run(self, run_identifier: str) -> str:
        n = 0
        while not self.stop_running.is_set() and n < 20:
            self.data_queue.put((n.to_bytes(4, "little"), {"n": n}))
            n += 1
        self.stop_running.wait()  # a real satellite would keep acquiring
        return f"Counted to {n}"

    def do_stopping(self) -> str:
        self.EOR = {"last": 19}  # the EOR payload
        return "Stopped"


sat = Counter("counter1", "example", data_port=0, data_host="127.0.0.1", protocol=1)
rx = DataReceiver(sat.transmitter.endpoint, protocol=1)
sat.initialize({"_bor_timeout": 5000})  # milliseconds, as in the seed
sat.launch()
sat.start("run_1")
print(f"state {sat.state.name}")
sat.stop()
print(f"state {sat.state.name}, status {sat.status!r}")
values = []
while True:
    event = rx.recv(timeout_s=10)
    if isinstance(event, DataReceived):
        values.append(int.from_bytes(event.blocks[0], "little"))
    elif isinstance(event, RunEnded):
        print(f"received {values[:5]} ... {values[-2:]} ({len(values)} records)")
        print(f"EOR payload {event.metadata}, condition {event.summary.condition.name}")
        break
sat.land()
sat.close()
rx.close()
