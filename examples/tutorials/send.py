#!/usr/bin/env python
"""RabbitMQ tutorial 1 ("Hello World!"), producer: sends one message to the
"hello" queue. As in the official pika tutorial; the only change is that the
broker address comes from AMQP_URL (default amqp://guest:guest@localhost:5672/%2F).
"""
import os

import pika

connection = pika.BlockingConnection(
    pika.URLParameters(os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")),
)
channel = connection.channel()

channel.queue_declare(queue="hello", durable=True, arguments={"x-queue-type": "quorum"})

channel.basic_publish(exchange="", routing_key="hello", body="Hello World!")
print(" [x] Sent 'Hello World!'")

connection.close()
