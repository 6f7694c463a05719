"""What every outgoing HTTP call shares: the retry policy and ``Retry-After`` parsing
(``retry``), and the one way Basic authentication is sent (``auth``)."""
