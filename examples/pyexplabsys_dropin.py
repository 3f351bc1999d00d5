"""Code written for PyExpLabSys's sockets and its DateDataPullClient, run on daqwire.

Only the imports change, plus port=0 and host="127.0.0.1" so that the example needs no fixed
port (the reference could not serve on port 0). 42 codenames make the json_wn reply longer
than 1024 bytes, which the reference's client could not read.
Run it from the repository root: python examples/pyexplabsys_dropin.py
"""

import json
import time

# was: from PyExpLabSys.common.sockets import DateDataPullSocket
# was: from PyExpLabSys.common.socket_clients import DateDataPullClient
from daqwire.pyexplabsys import DateDataPullClient, DateDataPullSocket

channels = [f"channel_{i:02d}" for i in range(40)]
codenames = ["temperature", "setpoint", *channels]
timeouts = [1.0, None] + [None] * len(channels)
data_socket = DateDataPullSocket("furnace", codenames, timeouts=timeouts, port=0, host="127.0.0.1")
data_socket.start()
data_socket.set_point_now("temperature", 452.1)
data_socket.set_point("setpoint", (1700000000.0, 450.0))
for i, name in enumerate(channels):
    data_socket.set_point(name, (1700000000.0, i * 0.5))

client = DateDataPullClient("127.0.0.1", "furnace", port=data_socket.port, timeout=1.0)
print("codenames:", len(client.codenames), client.codenames[:3])
print("get_field('setpoint'):", client.get_field("setpoint"))
print("client.temperature[1]:", client.temperature[1])  # a codename read as an attribute
fields = client.get_all_fields()
print(f"get_all_fields: {len(fields)} fields, channel_39 = {fields['channel_39']}")
print("the json_wn reply was longer than 1024 bytes:", len(json.dumps(fields)) > 1024)

time.sleep(1.1)  # longer than temperature's timeout
try:
    client.get_field("temperature")
except ValueError as exc:
    print("get_field('temperature'):", repr(exc))
try:
    client.get_all_fields()
except ValueError as exc:
    print("get_all_fields():", repr(exc))
try:
    client.get_field("pressure")
except ValueError as exc:
    print("get_field('pressure'):", str(exc).partition(", valid")[0])

lenient = DateDataPullClient(
    "127.0.0.1", "furnace", port=data_socket.port, exception_on_old_data=False
)
print("exception_on_old_data=False:", lenient.get_field("temperature"))
client.close()  # the reference's client never closes its socket; daqwire's can
lenient.close()
data_socket.stop()
