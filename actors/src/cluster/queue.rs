//! Pulling from the cluster's work queues (jobs, relays): a durable pull
//! consumer with explicit acks, so a message whose engine dies unacked is
//! offered to another after the ack wait.

use super::{Cluster, ClusterError};
use async_nats::jetstream::consumer::{pull, AckPolicy};
use async_nats::jetstream::{stream, AckKind};
use futures_util::StreamExt;
use std::time::Duration;

/// How long one pull request waits at the servers. Short, because the
/// first pull request of a new feed can be dropped at the servers without a
/// word (seen with nats-server 2.9 and three routed servers: no 408, no
/// messages, while later requests on the same inbox are served; my guess is
/// that the request outruns its inbox's interest across the route). Its
/// engine is offered nothing until the client sends the next one,
/// `PULL_EXPIRES` plus the client's own 5 s later. With the default 30 s
/// every engine started last sat idle for 35 s while the first took every
/// job (the cluster bench's heavy jobs ran 12, 0, 0).
const PULL_EXPIRES: Duration = Duration::from_secs(1);

impl Cluster {
    /// The messages of `stream` this engine is offered through the durable
    /// consumer `consumer`, `batch` at a time; a message is offered at most
    /// `max_deliver` times (-1: without a bound).
    pub(super) async fn pull(
        &self,
        stream: &stream::Stream,
        name: &'static str,
        consumer: &'static str,
        max_deliver: i64,
        batch: usize,
    ) -> Result<Feed, ClusterError> {
        self.pull_filtered(stream, name, consumer, None, max_deliver, batch).await
    }

    /// As [`Cluster::pull`], of the stream's messages on `subject` only
    /// (`None`: all of them).
    pub(super) async fn pull_filtered(
        &self,
        stream: &stream::Stream,
        name: &'static str,
        consumer: &str,
        subject: Option<String>,
        max_deliver: i64,
        batch: usize,
    ) -> Result<Feed, ClusterError> {
        let what = format!("consume {name} as {consumer}");
        let config = pull::Config {
            durable_name: Some(consumer.to_owned()),
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.ack_wait,
            max_deliver,
            filter_subject: subject.unwrap_or_default(),
            ..Default::default()
        };
        let consumer = self.deadline(&what, stream.get_or_create_consumer(consumer, config)).await?;
        let messages = consumer.stream().max_messages_per_batch(batch).expires(PULL_EXPIRES).messages();
        let messages = self.deadline(&what, messages).await?;
        Ok(Feed { messages, stream: name })
    }

    /// Messages of `stream` not yet acked through `consumer`: waiting, and
    /// pulled but unacked.
    pub(super) async fn unacked(
        &self,
        stream: &stream::Stream,
        name: &'static str,
        consumer: &'static str,
    ) -> Result<u64, ClusterError> {
        let what = format!("read the state of {consumer} on {name}");
        let info = self.deadline(&what, stream.consumer_info(consumer)).await?;
        Ok(info.num_pending + info.num_ack_pending as u64)
    }
}

/// The messages offered to this engine.
pub(crate) struct Feed {
    messages: pull::Stream,
    stream: &'static str,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").field("stream", &self.stream).finish_non_exhaustive()
    }
}

impl Feed {
    /// Its deliveries as a stream; it ends with the feed.
    pub(crate) fn into_stream(self) -> impl futures_util::Stream<Item = Result<Delivery, ClusterError>> {
        futures_util::stream::unfold(self, |mut feed| async move { feed.next().await.map(|delivery| (delivery, feed)) })
    }

    /// The next delivery; `None` once the feed ends, an `Err` when the
    /// servers fail it (both end it: follow it again).
    async fn next(&mut self) -> Option<Result<Delivery, ClusterError>> {
        let message = self.messages.next().await?;
        let stream = self.stream;
        Some(
            message.map(|message| Delivery { message, stream }).map_err(|err| ClusterError::JetStream {
                what: format!("pull from {stream}"),
                reason: err.to_string(),
            }),
        )
    }
}

/// One delivered message.
pub(crate) struct Delivery {
    message: async_nats::jetstream::Message,
    stream: &'static str,
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery").field("stream", &self.stream).finish_non_exhaustive()
    }
}

impl Delivery {
    /// What it carries (another engine, or anyone who can write to the
    /// servers, put it there).
    pub(super) fn payload(&self) -> &[u8] {
        &self.message.payload
    }

    /// The stream it came from.
    pub(super) fn stream(&self) -> &'static str {
        self.stream
    }

    /// How many times it was delivered, this time included.
    pub(crate) fn attempt(&self) -> u64 {
        self.message.info().map_or(1, |info| info.delivered.max(1) as u64)
    }

    /// Done with: the servers drop it.
    pub(crate) async fn ack(&self) -> Result<(), ClusterError> {
        self.message.ack().await.map_err(|err| ClusterError::JetStream {
            what: format!("ack a message of {}", self.stream),
            reason: err.to_string(),
        })
    }

    /// Still working on it: the ack wait starts again.
    pub(crate) async fn in_progress(&self) {
        let _ = self.message.ack_with(AckKind::Progress).await;
    }

    /// Not now: offered again after `delay`.
    pub(crate) async fn later(&self, delay: Duration) {
        let _ = self.message.ack_with(AckKind::Nak(Some(delay))).await;
    }

    /// Never: dropped without being handled (it cannot be what its stream
    /// carries).
    pub(crate) async fn discard(&self) {
        let _ = self.message.ack_with(AckKind::Term).await;
    }
}
