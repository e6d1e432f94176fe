from tests.test_slack_app import Harness, block_text, harness  # noqa
async def test_exp(harness):
    harness.fake.faults["auth.test"] = [(500, {})] * 20
    status, ack, elapsed, hook = await harness.command("help")
    print("STATUS", status, elapsed, str(ack)[:300])
    print([c.method for c in harness.fake.calls])
