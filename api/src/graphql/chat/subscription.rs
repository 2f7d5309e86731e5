//! `chatStream`: a chat's text as it comes, then its result.

use super::start::*;
use super::types::*;
use crate::graphql::common::errors::{chat_error, internal};
use async_graphql::{Context, ID, Subscription};
use futures::{Stream, StreamExt};

#[derive(Default)]
pub struct ChatSubscription;

#[Subscription]
impl ChatSubscription {
    /// Chat with any model of the project, streamed: a chunk per piece of
    /// text as the model produces it, then one with the recorded result.
    /// Ending the subscription early cancels the chat (recorded `cancelled`).
    async fn chat(
        &self,
        ctx: &Context<'_>,
        model_id: ID,
        messages: Vec<ChatMessageInput>,
        params: Option<ChatParams>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ChatChunk>>> {
        let (pieces, done) = start_chat(ctx, &model_id, messages, params).await?;
        let pieces = tokio_stream::wrappers::UnboundedReceiverStream::new(pieces).map(|delta| {
            Ok(ChatChunk {
                delta,
                result: None,
            })
        });
        let last = futures::stream::once(async move {
            match done.await {
                Ok(Ok((reply, recorded))) => Ok(ChatChunk {
                    delta: String::new(),
                    result: Some(result_of(reply, recorded)),
                }),
                Ok(Err(e)) => Err(chat_error(e)),
                Err(e) => Err(internal(e)),
            }
        });
        Ok(pieces.chain(last))
    }
}
