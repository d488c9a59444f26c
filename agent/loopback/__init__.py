"""Stand-ins for Twilio, OpenAI and Cal.com that speak their real wire formats on 127.0.0.1.

Nothing outside the machine is reachable in tests, in `simulate --audio` or in `bench`: these fakes
are where the runtime meets its outside world then. Each is faithful to the documented protocol
(Media Streams messages, OpenAI's HTTP API, Cal.com v2 JSON, Twilio REST) and records what it saw.
They are never used by a real call.
"""
