#!/usr/bin/env python
"""RabbitMQ tutorial 2 (Work Queues), worker: takes tasks from "task_queue" one
at a time (prefetch 1), sleeps one second per dot, then acks. As in the
official pika tutorial; the only change is that the broker address comes from
AMQP_URL (default amqp://guest:guest@localhost:5672/%2F).
"""
import os
import time

import pika

connection = pika.BlockingConnection(
    pika.URLParameters(os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")),
)
channel = connection.channel()

channel.queue_declare(queue="task_queue", durable=True, arguments={"x-queue-type": "quorum"})
print(" [*] Waiting for messages. To exit press CTRL+C")


def callback(ch, method, properties, body):
    print(f" [x] Received {body.decode()}")
    time.sleep(body.count(b"."))
    print(" [x] Done")
    ch.basic_ack(delivery_tag=method.delivery_tag)


channel.basic_qos(prefetch_count=1)
channel.basic_consume(queue="task_queue", on_message_callback=callback)

channel.start_consuming()
