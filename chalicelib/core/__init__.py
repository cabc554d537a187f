"""What the API (Lambda) and the session hosts share, and the only part of `chalicelib` a host imports.

- `contract`: the versioned wire shapes (Command, Reply, WireEvent) and WaGo's error wording;
- `errors`: `DomainError(status, message)`, the one error vocabulary;
- `settings`, `observability`: configuration from the environment; Powertools logger and metrics;
- `limits`: the AWS payload caps (API Gateway 10 MB, Lambda 6 MB) and the body limits they impose;
- `models`: the DynamoDB tables (pynamodb);
- `media`, `outbox`, `events`, `message_content`, `calls`, `ssrf`: the pieces of the messaging,
  webhook and call pipelines that both sides run;
- `jid`: the one parser of WhatsApp addresses; `shapes`: the one builder of whatsmeow's event JSON
  (both drivers). The simulator is host-only (session_host/sim/); its tables stay in `models`.

Nothing here imports Chalice or any API module (routing, envelope, routes): a boundary test imports a
fresh host process with `chalice` blocked to prove it.
"""
