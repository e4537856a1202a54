"""Code shared by the three replication functions (packaged into each function's ZIP).

- `settings`: the function environment variables of docs/contract.md, parsed once into a frozen
  value (downstream environments are derived, never configured twice).
- `clients`: lazily created boto3 clients, local or in another environment's account through the
  assumed replication-agent role.
- `telemetry`: structured JSON logger and Embedded Metric Format metrics.
- `events`: recognising the event shapes AWS sends, and reporting the ones nobody understands.
- `errors`: the exceptions a handler raises on purpose.
- `budget`: the invocation's remaining time (from the Lambda context), and backing off on
  throttling within it.
- `items`: DynamoDB attribute-value conversion.
"""
