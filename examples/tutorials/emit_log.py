#!/usr/bin/env python
"""RabbitMQ tutorial 3 (Publish/Subscribe), producer: publishes one log line to
the fanout exchange "logs". As in the official pika tutorial; the only change
is that the broker address comes from AMQP_URL
(default amqp://guest:guest@localhost:5672/%2F).
"""
import os
import sys

import pika

connection = pika.BlockingConnection(
    pika.URLParameters(os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")),
)
channel = connection.channel()

channel.exchange_declare(exchange="logs", exchange_type="fanout")

message = " ".join(sys.argv[1:]) or "info: Hello World!"
channel.basic_publish(exchange="logs", routing_key="", body=message)
print(f" [x] Sent {message}")

connection.close()
