//! amqprs helpers: connecting, recording channel closes and returns; `eventually`.

use super::*;

/// Connects amqprs to the broker (guest/guest, vhost `/`).
pub async fn amqprs_connect(b: &Broker) -> amqprs::connection::Connection {
    amqprs_connect_as(b, "guest", "guest")
        .await
        .unwrap_or_else(|e| panic!("amqprs connect to {}: {e}", b.addr()))
}

/// Connects amqprs with the given credentials; returns the client's error.
pub async fn amqprs_connect_as(
    b: &Broker,
    user: &str,
    password: &str,
) -> Result<amqprs::connection::Connection, amqprs::error::Error> {
    let args = amqprs::connection::OpenConnectionArguments::new(b.host(), b.port(), user, password);
    within_secs(20, amqprs::connection::Connection::open(&args)).await
}

/// The `(reply_code, reply_text)` of every channel.close amqprs received on a
/// channel with an [`AmqprsCloseRecorder`] callback.
pub type CloseLog = Arc<Mutex<Vec<(u16, String)>>>;

/// `(reply_code, reply_text, body)` of every basic.return received.
pub type ReturnLog = Arc<Mutex<Vec<(u16, String, Vec<u8>)>>>;

/// An amqprs channel callback that records server-sent channel.close and
/// basic.return, and counts publisher acks.
#[derive(Clone, Default)]
pub struct AmqprsCloseRecorder {
    pub closes: CloseLog,
    pub returns: ReturnLog,
    pub acks: Arc<Mutex<Vec<(u64, bool)>>>,
}

#[async_trait::async_trait]
impl amqprs::callbacks::ChannelCallback for AmqprsCloseRecorder {
    async fn close(
        &mut self,
        _channel: &amqprs::channel::Channel,
        close: amqprs::CloseChannel,
    ) -> Result<(), amqprs::error::Error> {
        self.closes
            .lock()
            .unwrap()
            .push((close.reply_code(), close.reply_text().to_string()));
        Ok(())
    }
    async fn cancel(
        &mut self,
        _channel: &amqprs::channel::Channel,
        _cancel: amqprs::Cancel,
    ) -> Result<(), amqprs::error::Error> {
        Ok(())
    }
    async fn flow(
        &mut self,
        _channel: &amqprs::channel::Channel,
        active: bool,
    ) -> Result<bool, amqprs::error::Error> {
        Ok(active)
    }
    async fn publish_ack(&mut self, _channel: &amqprs::channel::Channel, ack: amqprs::Ack) {
        self.acks
            .lock()
            .unwrap()
            .push((ack.delivery_tag(), ack.mutiple()));
    }
    async fn publish_nack(&mut self, _channel: &amqprs::channel::Channel, _nack: amqprs::Nack) {}
    async fn publish_return(
        &mut self,
        _channel: &amqprs::channel::Channel,
        ret: amqprs::Return,
        _basic_properties: amqprs::BasicProperties,
        content: Vec<u8>,
    ) {
        self.returns.lock().unwrap().push((
            ret.reply_code(),
            ret.reply_text().to_string(),
            content,
        ));
    }
}

/// Polls `cond` every 20 ms until it holds or `secs` pass; returns whether it held.
pub async fn eventually<F: FnMut() -> bool>(secs: u64, mut cond: F) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
