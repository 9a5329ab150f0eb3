"""The HTTP edge every face shares: CORS, proxy headers, security headers, input rules,
throttling, the schema check, /health and the OpenAPI document."""
