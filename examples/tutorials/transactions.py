#!/usr/bin/env python
"""AMQP 0-9-1 transactions with pika, in the style of the RabbitMQ tutorials:
a producer publishes a batch inside a transaction (invisible until
tx_commit), rolls a second batch back, and a consumer acks inside a
transaction (the messages stay unacked until tx_commit). The queue name is
the first argument (default "tx_demo"); the broker address comes from
AMQP_URL (default amqp://guest:guest@localhost:5672/%2F).
"""
import os
import sys

import pika

queue = sys.argv[1] if len(sys.argv) > 1 else "tx_demo"
connection = pika.BlockingConnection(
    pika.URLParameters(os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")),
)
observer = connection.channel()
channel = connection.channel()
channel.queue_declare(queue=queue, durable=True)


def ready():
    return observer.queue_declare(queue=queue, passive=True).method.message_count


channel.tx_select()
for i in range(3):
    channel.basic_publish(
        exchange="",
        routing_key=queue,
        body=f"order {i}",
        properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
    )
print(f" [x] Published 3 in a transaction, ready before commit: {ready()}")
channel.tx_commit()
print(f" [x] Committed, ready: {ready()}")

channel.basic_publish(exchange="", routing_key=queue, body="never")
channel.tx_rollback()
print(f" [x] Rolled back a publish, ready: {ready()}")

consumer = connection.channel()
consumer.tx_select()
tags = []
for _ in range(3):
    method, _props, body = consumer.basic_get(queue=queue)
    print(f" [x] Got {body.decode()}")
    tags.append(method.delivery_tag)
consumer.basic_ack(delivery_tag=tags[-1], multiple=True)
consumer.tx_rollback()
consumer.close()
print(f" [x] Acked, rolled back, closed the channel, ready: {ready()}")

consumer = connection.channel()
consumer.tx_select()
for _ in range(3):
    method, _props, body = consumer.basic_get(queue=queue)
    consumer.basic_ack(delivery_tag=method.delivery_tag)
consumer.tx_commit()
consumer.close()
print(f" [x] Acked and committed, ready: {ready()}")

observer.queue_delete(queue=queue)
connection.close()
