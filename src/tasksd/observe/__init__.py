"""What tasksd tells its operators: Prometheus metrics and structured logs. A leaf below
every layer (it imports only the model), so the API, the engine and the store all report."""
