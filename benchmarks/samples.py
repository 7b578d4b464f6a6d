"""Sample messages the benchmarks share, with realistic field values."""

from sv2proxy.codec.mining import SubmitSharesStandard

SHARE_FIELDS = dict(
    channel_id=7,
    sequence_number=123_456,
    job_id=42,
    nonce=0x7C2BAC1D,
    ntime=0x66E1D2C3,
    version=0x20A00000,
)

SUBMIT_SHARES_STANDARD = SubmitSharesStandard(**SHARE_FIELDS)
