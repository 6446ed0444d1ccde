#!/usr/bin/env python
"""RabbitMQ tutorial 7 (Publisher Confirms) for pika: publishes MESSAGE_COUNT
messages to a fresh exclusive queue with three strategies and prints how long
each took: (1) publishing individually, waiting for each confirm; (2) in
batches, waiting for a whole batch to be confirmed; (3) handling confirms
asynchronously as they arrive. The official tutorial has no pika version; this
one follows the Java and Ruby ones (same strategies, counts and output). The
broker address comes from AMQP_URL (default amqp://guest:guest@localhost:5672/%2F).
"""
import collections
import os
import sys
import time

import pika

MESSAGE_COUNT = 50_000
BATCH_SIZE = 100
CONFIRM_TIMEOUT_SECONDS = 60


def connection_parameters():
    return pika.URLParameters(os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F"))


def elapsed_ms(start):
    return int((time.perf_counter() - start) * 1000)


def publish_messages_individually():
    connection = pika.BlockingConnection(connection_parameters())
    channel = connection.channel()

    result = channel.queue_declare(queue="", exclusive=True)
    queue_name = result.method.queue

    channel.confirm_delivery()

    start = time.perf_counter()
    for i in range(MESSAGE_COUNT):
        # With confirms enabled, basic_publish blocks until the broker has
        # confirmed the message (and raises pika.exceptions.NackError if it
        # was nack-ed).
        channel.basic_publish(exchange="", routing_key=queue_name, body=str(i))
    print(f"Published {MESSAGE_COUNT:,} messages individually in {elapsed_ms(start):,} ms")

    connection.close()


class ConfirmingPublisher(object):
    """Publishes MESSAGE_COUNT messages on an asynchronous SelectConnection and
    tracks the broker's confirms by delivery tag. With a batch_size, it
    publishes one batch, waits until all of it is confirmed, then publishes
    the next; without one, it publishes everything at once and handles the
    confirms as they come."""

    def __init__(self, batch_size=None):
        self.batch_size = batch_size
        self.outstanding_confirms = collections.OrderedDict()
        self.next_publish_seq_no = 1
        self.published = 0
        self.start = None
        self.duration_ms = None
        self.error = None
        self.connection = None
        self.channel = None
        self.queue_name = None

    def run(self):
        self.connection = pika.SelectConnection(
            connection_parameters(),
            on_open_callback=self.on_connection_open,
            on_open_error_callback=self.on_connection_open_error,
            on_close_callback=self.on_connection_closed,
        )
        self.connection.ioloop.start()
        if self.error is not None:
            raise RuntimeError(self.error)
        return self.duration_ms

    def fail(self, error):
        if self.error is None:
            self.error = error
        if self.connection.is_open:
            self.connection.close()

    def on_connection_open(self, connection):
        connection.channel(on_open_callback=self.on_channel_open)

    def on_connection_open_error(self, connection, error):
        self.error = f"connection failed: {error!r}"
        connection.ioloop.stop()

    def on_connection_closed(self, connection, reason):
        if self.duration_ms is None and self.error is None:
            self.error = f"connection closed: {reason!r}"
        connection.ioloop.stop()

    def on_channel_open(self, channel):
        self.channel = channel
        channel.add_on_close_callback(self.on_channel_closed)
        channel.queue_declare(queue="", exclusive=True, callback=self.on_queue_declareok)

    def on_channel_closed(self, channel, reason):
        if self.duration_ms is None:
            self.fail(f"channel closed: {reason!r}")

    def on_queue_declareok(self, frame):
        self.queue_name = frame.method.queue
        self.channel.confirm_delivery(
            ack_nack_callback=self.on_delivery_confirmation,
            callback=self.on_confirm_selectok,
        )

    def on_confirm_selectok(self, frame):
        self.connection.ioloop.call_later(CONFIRM_TIMEOUT_SECONDS, self.on_timeout)
        self.start = time.perf_counter()
        self.publish_messages()

    def on_timeout(self):
        if self.duration_ms is None:
            self.fail(f"All messages could not be confirmed in {CONFIRM_TIMEOUT_SECONDS} seconds")

    def publish_messages(self):
        if self.batch_size is None:
            limit = MESSAGE_COUNT
        else:
            limit = min(MESSAGE_COUNT, self.published + self.batch_size)
        while self.published < limit:
            body = str(self.published)
            self.outstanding_confirms[self.next_publish_seq_no] = body
            self.next_publish_seq_no += 1
            self.channel.basic_publish(exchange="", routing_key=self.queue_name, body=body)
            self.published += 1

    def on_delivery_confirmation(self, frame):
        method = frame.method
        sequence_number = method.delivery_tag
        if isinstance(method, pika.spec.Basic.Nack):
            body = self.outstanding_confirms.get(sequence_number)
            sys.stderr.write(
                f"Message with body {body} has been nack-ed. "
                f"Sequence number: {sequence_number}, multiple: {method.multiple}\n"
            )
        if method.multiple:
            while self.outstanding_confirms and next(iter(self.outstanding_confirms)) <= sequence_number:
                self.outstanding_confirms.popitem(last=False)
        else:
            self.outstanding_confirms.pop(sequence_number, None)

        if not self.outstanding_confirms:
            if self.published < MESSAGE_COUNT:
                self.publish_messages()
            else:
                self.duration_ms = elapsed_ms(self.start)
                self.connection.close()


def publish_messages_in_batch():
    duration_ms = ConfirmingPublisher(batch_size=BATCH_SIZE).run()
    print(f"Published {MESSAGE_COUNT:,} messages in batch in {duration_ms:,} ms")


def handle_publish_confirms_asynchronously():
    duration_ms = ConfirmingPublisher().run()
    print(f"Published {MESSAGE_COUNT:,} messages and handled confirms asynchronously in {duration_ms:,} ms")


def main():
    publish_messages_individually()
    publish_messages_in_batch()
    handle_publish_confirms_asynchronously()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("Interrupted")
        try:
            sys.exit(0)
        except SystemExit:
            os._exit(0)
