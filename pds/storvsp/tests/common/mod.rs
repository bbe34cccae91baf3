pub mod vmbus;
