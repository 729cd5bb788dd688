//! The SNS API on the wire (Query protocol, `Version=2010-03-31`): [`action`] declares every operation
//! once (its typed input and output), [`wire`] decodes forms and writes the XML replies and error
//! documents, [`error`] maps each SNS error to AWS's code and status in one table.

pub mod action;
pub mod error;
pub mod wire;
