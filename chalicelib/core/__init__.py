"""What the API (Lambda) and the session hosts share, and the only part of `chalicelib` a host imports.

- `contract`: the versioned wire shapes (Command, Reply, WireEvent) and WaGo's error wording;
- `errors`: `DomainError(status, message)`, the one error vocabulary;
- `settings`, `observability`: configuration from the environment; Powertools logger and metrics;
- `limits`: the AWS payload caps (API Gateway 10 MB, Lambda 6 MB) and the body limits they impose;
- `models`: the DynamoDB tables (pynamodb);
- `media`, `outbox`, `events`, `message_content`, `calls`, `ssrf`, `sim_network`: the pieces of the
  messaging, webhook, call and simulator pipelines that both sides run.

Nothing here imports Chalice or any API module (routing, envelope, routes): a boundary test imports a
fresh host process with `chalice` blocked to prove it.
"""
