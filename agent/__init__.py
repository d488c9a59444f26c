"""The runtime: configuration, storage, the phone server, the Pipecat pipeline and the CLI.

`agent/` wires `booking/` (the domain) to the outside world; it is the only package that imports
pipecat, twilio, openai or fastapi.
"""
