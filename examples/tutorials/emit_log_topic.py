#!/usr/bin/env python
"""RabbitMQ tutorial 5 (Topics), producer: publishes one log line to the topic
exchange "topic_logs" with a "<facility>.<severity>" routing key. As in the
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

channel.exchange_declare(exchange="topic_logs", exchange_type="topic")

routing_key = sys.argv[1] if len(sys.argv) > 2 else "anonymous.info"
message = " ".join(sys.argv[2:]) or "Hello World!"
channel.basic_publish(
    exchange="topic_logs",
    routing_key=routing_key,
    body=message,
)
print(f" [x] Sent {routing_key}:{message}")

connection.close()
