#!/usr/bin/env python
"""RabbitMQ tutorial 4 (Routing), producer: publishes one log line to the
direct exchange "direct_logs" with its severity as routing key. As in the
official pika tutorial; the only change is that the broker address comes from
AMQP_URL (default amqp://guest:guest@localhost:5672/%2F).
"""
import os
import sys

import pika

connection = pika.BlockingConnection(
    pika.URLParameters(os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")),
)
channel = connection.channel()

channel.exchange_declare(exchange="direct_logs", exchange_type="direct")

severity = sys.argv[1] if len(sys.argv) > 2 else "info"
message = " ".join(sys.argv[2:]) or "Hello World!"
channel.basic_publish(
    exchange="direct_logs",
    routing_key=severity,
    body=message,
)
print(f" [x] Sent {severity}:{message}")

connection.close()
