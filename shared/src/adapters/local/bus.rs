//! In-process event bus: persisted events fan out to WebSocket and SSE subscribers of
//! `campaign serve` and to the CLI's progress display. A subscriber that falls behind
//! (lagged) replays from the store, so the bus may drop without losing anything.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::domain::Event;
use crate::ports::EventPublisher;

#[derive(Debug, Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl Bus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        Bus { tx }
    }

    /// Every event published from now on (all runs); filter by run id.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new(16_384)
    }
}

#[async_trait]
impl EventPublisher for Bus {
    async fn publish(&self, events: &[Event]) {
        // Nobody watching (most runs, every run of the throughput bench): no copies made
        // only to be dropped. Nothing is missed by one subscribing just after this look:
        // events are committed before they are published, and every subscriber either
        // subscribes before its run starts (`campaign run`, the bench) or replays the
        // store's events after subscribing (the server's streams).
        if self.tx.receiver_count() == 0 {
            return;
        }
        for e in events {
            // No receiver is not an error: nobody is watching.
            let _ = self.tx.send(Arc::new(e.clone()));
        }
    }
}
