"""End-to-end tests: `iotledger` as operators run it, in processes of its own, reached
over HTTP and MQTT; the fault suite and the fuzzing of the whole API."""
