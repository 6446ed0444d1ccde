#!/usr/bin/env python
"""RabbitMQ tutorial 2 (Work Queues), producer: sends one persistent task (the
command line, one second of work per dot) to "task_queue". As in the official
pika tutorial; the only change is that the broker address comes from AMQP_URL
(default amqp://guest:guest@localhost:5672/%2F).
"""
import os
import sys

import pika

connection = pika.BlockingConnection(
    pika.URLParameters(os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")),
)
channel = connection.channel()

channel.queue_declare(queue="task_queue", durable=True, arguments={"x-queue-type": "quorum"})

message = " ".join(sys.argv[1:]) or "Hello World!"
channel.basic_publish(
    exchange="",
    routing_key="task_queue",
    body=message,
    properties=pika.BasicProperties(
        delivery_mode=pika.DeliveryMode.Persistent,
    ),
)
print(f" [x] Sent {message}")

connection.close()
