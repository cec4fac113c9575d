//! # floe-fleet: what the queue-driven deployables share
//!
//! - [`aws`]: the AWS SDK configuration (standard chain, floe's retry policy);
//! - [`config`]: the fleet's configuration (file, stack outputs, environment, flags);
//! - [`sqs`]: the few SQS operations floe uses, on the AWS SDK;
//! - [`handler`]: the message-batch handler contract both deployables implement;
//! - [`worker`]: the long-polling loop with the semantics of Lambda's SQS event source mapping;
//! - [`entry`]: serve a handler as a Lambda function or a worker (both consumers' `main`);
//! - [`lambda`]: the same handler behind `lambda_runtime` (`SqsEvent` → `SqsBatchResponse`);
//! - [`events`]: S3 object notifications (straight or through SNS) as the events queue holds them;
//! - [`records`]: fragments, failure reasons and the enqueued plan, kept under the fragments prefix.
//!
//! One handler, three ways to run it: `producer local` calls the libraries
//! directly, the worker and Lambda entry points call a [`handler::BatchHandler`].

#![warn(missing_docs)]

pub mod aws;
pub mod config;
pub mod entry;
pub mod events;
pub mod handler;
pub mod lambda;
pub mod records;
pub mod sqs;
pub mod worker;

pub use config::{FleetArgs, FleetConfig, GcsArgs};
pub use handler::{BatchHandler, BatchOutcome, Message, MessageFailure};
