"""
Tests for L{stellarflow.events.processor} (GetEventsRPC), L{stellarflow.events.network} and the
fixture helpers of L{stellarflow.testing.fixtures}.

Every recorded getEvents fixture is processed; the expected values are literals read off the
fixtures' notes and an independent decoding with C{stellar_sdk.scval.to_native}.
"""

import glob
import json
import os

from stellar_sdk import Network, scval
from twisted.trial.unittest import FailTest, SkipTest, SynchronousTestCase
from zope.interface.verify import verifyClass, verifyObject

from stellarflow.events import GetEventsRPC, decodeEvent, network, processor
from stellarflow.interfaces import IComponentFactory, IProcessor
from stellarflow.message import (
    CONTRACT_EVENT,
    DECODE_ERROR,
    ENVELOPE_FIELDS,
    RAW_JSON_FIELDS,
    RAW_XDR_FIELDS,
    TOKEN_FIELDS,
)
from stellarflow.testing import fixtures
from stellarflow.testing.fixtures import fixturePath, loadRPCResult

PUBLIC = Network.PUBLIC_NETWORK_PASSPHRASE
TESTNET = Network.TESTNET_NETWORK_PASSPHRASE
XLM_SAC = "CDLZFC3SYJYDZT7K67VZ75HPJVIEUVNIXF47ZG2FB2RMQQVU2HHGCYSC"

# Per getEvents fixture: one row per event:
# (id, ledger, event_kind, contract_id, txHash, (op index, tx index, in successful call), topics,
#  data, token summary (event_type, from, to, asset_code, amount, amount_raw, asset_verified) or None)
EXPECTED = {
    "docs-2023-any-events-diagnostic-legacy-value-object.json": [
        (
            "0010866271553875968-0000000000", 2530001, "diagnostic", None, None, (None, None, True),
            ["fn_call", "8613b023e44bd7c66993b72a239a5145fd0bf7a8c4f22fb4c777a486e061d9c5", "set_currency_rate"],
            ["usd", "1187080"],
            None,
        ),
        (
            "0010866271553875968-0000000001", 2530001, "diagnostic",
            "CCDBHMBD4RF5PRTJSO3SUI42KFC72C7XVDCPEL5UY532JBXAMHM4KOQ3", None, (None, None, True),
            ["fn_return", "set_currency_rate"],
            None,
            None,
        ),
    ],
    "docs-2023-native-xlm-transfer-events-legacy-value-object.json": [
        (
            "0010870652420501504-0000000004", 2531021, "contract", XLM_SAC, None, (None, None, True),
            [
                "transfer",
                "GCHN4Q4VDZTIM54FY76UW4W5COQW46PE4FZYH5RW6PX3N4OCK5J6EVWF",
                "GDPXC3X57HUGZPZ7XPFXELBCDHHJGF3OYRLEIGK7ALQS73PQN5HQGAYP",
                "native",
            ],
            "150",
            (
                "transfer",
                "GCHN4Q4VDZTIM54FY76UW4W5COQW46PE4FZYH5RW6PX3N4OCK5J6EVWF",
                "GDPXC3X57HUGZPZ7XPFXELBCDHHJGF3OYRLEIGK7ALQS73PQN5HQGAYP",
                "XLM", "0.000015", "150", True,
            ),
        ),
        (
            "0010871734752280576-0000000004", 2531273, "contract", XLM_SAC, None, (None, None, True),
            [
                "transfer",
                "GD4YIPQUZ4332RJQIOR7PAFARRKTZAW77DHPQMIRLU2YSDFBENVALZ2L",
                "GDBF2FBQWLFGFIYEPHNCRQZ7CWPQNUOLBDOCQR4QPIFAZGKOQL372XRH",
                "native",
            ],
            "150",
            (
                "transfer",
                "GD4YIPQUZ4332RJQIOR7PAFARRKTZAW77DHPQMIRLU2YSDFBENVALZ2L",
                "GDBF2FBQWLFGFIYEPHNCRQZ7CWPQNUOLBDOCQR4QPIFAZGKOQL372XRH",
                "XLM", "0.000015", "150", True,
            ),
        ),
    ],
    "docs-2024-any-events-diagnostic.json": [
        (
            "0005111084096696320-0000000000", 1190017, "diagnostic", None,
            "3f81b00a78830bb0186539cceed5ac137aad0d6872dd998c533c2758fbda0a6c", (None, None, True),
            ["fn_call", "5592a35e78c59a27a7c61550f436137149341d5d57c8e9338d64e0f2e47ff1be", "set_price"],
            [
                "GDZZ6GMN4NNG55OLWWFUBKRYLBXL5K2H6MNXC4WFFW6FMY6HYZIAQ3FZ",
                [
                    "6006335997676231636", "287487473049422761", "100007053825721", "46974260929423",
                    "12952415698100253", "100014316640784", "42750245710876", "3220940564431810",
                    "630183180971900", "62558148557674", "1289877777169314", "100004522928785",
                    "768367527698823", "10416800003969", "678944988547569", "106023041244661",
                ],
                "1713495000000",
            ],
            None,
        ),
        (
            "0005111084096696320-0000000001", 1190017, "diagnostic",
            "CBKZFI26PDCZUJ5HYYKVB5BWCNYUSNA5LVL4R2JTRVSOB4XEP7Y34OPN",
            "3f81b00a78830bb0186539cceed5ac137aad0d6872dd998c533c2758fbda0a6c", (None, None, True),
            ["fn_return", "set_price"],
            None,
            None,
        ),
    ],
    "docs-2024-native-xlm-transfer-events-g-to-g.json": [
        (
            "0005121327593697280-0000000002", 1192402, "contract", XLM_SAC,
            "bd8a6611a3b44ff7dce76a27fb32fa69c9f6eff3435ca5296f6035d5105617ed", (None, None, True),
            [
                "transfer",
                "GD6IWRO5ZQWBUGI6POUUXZL6USE4RH3WLOY3NS4DVPJH6F2M5C52IYAI",
                "GDNOJAVBDE3EVU2EMAEZMOQRS4UQQNCIWV5GV5VCG62N2V73RSRTJMP6",
                "native",
            ],
            "100000000",
            (
                "transfer",
                "GD6IWRO5ZQWBUGI6POUUXZL6USE4RH3WLOY3NS4DVPJH6F2M5C52IYAI",
                "GDNOJAVBDE3EVU2EMAEZMOQRS4UQQNCIWV5GV5VCG62N2V73RSRTJMP6",
                "XLM", "10", "100000000", True,
            ),
        ),
        (
            "0005121482212511744-0000000002", 1192438, "contract", XLM_SAC,
            "3fa1787085a4aa585507751394d70494a02e71d347446095a763ecbfc647937c", (None, None, True),
            [
                "transfer",
                "GD6IWRO5ZQWBUGI6POUUXZL6USE4RH3WLOY3NS4DVPJH6F2M5C52IYAI",
                "GDNOJAVBDE3EVU2EMAEZMOQRS4UQQNCIWV5GV5VCG62N2V73RSRTJMP6",
                "native",
            ],
            "10000000",
            (
                "transfer",
                "GD6IWRO5ZQWBUGI6POUUXZL6USE4RH3WLOY3NS4DVPJH6F2M5C52IYAI",
                "GDNOJAVBDE3EVU2EMAEZMOQRS4UQQNCIWV5GV5VCG62N2V73RSRTJMP6",
                "XLM", "1", "10000000", True,
            ),
        ),
    ],
    "docs-2025-any-events-reflector-oracle.json": [
        (
            "0000857400026345472-0000000001", 199629, "contract",
            "CCSSOHTBL3LEWUCBBEB5NJFC2OKFRC74OWEIJIZLRJBGAAU4VMU5NV4W",
            "593f3ada587b687fd66afff3a38062fab4f9763172a6e1390993f7ff5a1cb555", (None, None, True),
            ["reflector", "prices", "update"],
            [
                [["Other", "EUR"], "117336963000000"],
                [["Other", "GBP"], "137300431000000"],
                [["Other", "CHF"], "125298775000000"],
                [["Other", "CAD"], "73214056000000"],
                [["Other", "MXN"], "5316702000000"],
                [["Other", "ARS"], "84152000000"],
                [["Other", "BRL"], "18240556000000"],
                [["Other", "THB"], "3077530000000"],
                [["Other", "XAU"], "328947368420000000"],
            ],
            None,
        ),
        (
            "0000857400026349568-0000000001", 199629, "contract",
            "CAVLP5DH2GJPZMVO7IJY4CVOD5MWEFTJFVPD2YY2FQXOQHRGHK4D6HLP",
            "9eca73816d7baf199c923c6eb4879aa6b63145dd283c623f05d106a3c9a4622c", (None, None, True),
            ["reflector", "prices", "update"],
            [
                [["Stellar", "CAWH4XMRQL7AJZCXEJVRHHMT6Y7ZPFCQCSKLIFJL3AVIQNC5TSVWKQOR"], "0"],
                [["Stellar", "CDJF2JQINO7WRFXB2AAHLONFDPPI4M3W2UM5THGQQ7JMJDIEJYC4CMPG"], "79660644444"],
                [["Stellar", "CABWYQLGOQ5Y3RIYUVYJZVA355YVX4SPAMN6ORDAVJZQBPPHLHRRLNMS"], "99970951283189"],
                [["Stellar", "CCTQVWJYOKUJJSTTKJ4CHJKTOR7PH6TZAABJU56UXXEETLA2Q5HBGFVU"], "126602435451"],
                [["Stellar", "CA4DYJSRG7HPVTPJZAIPNUC3UJCQEZ456GPLYVYR2IATCBAPTQV6UUKZ"], "47495254739"],
                [["Stellar", "CBARCMJYRRNSYCWCR3EU2PEHAHWHBCQSMIKQIUSDWR3BK7CBCP622Q2R"], "83083103030"],
                [["Stellar", "CCBINL4TCQVEQN2Q2GO66RS4CWUARIECZEJA7JVYQO3GVF4LG6HJN236"], "108048941727265"],
            ],
            None,
        ),
    ],
    "docs-2025-native-xlm-transfer-events-pagingtoken.json": [
        (
            "0000859036408881152-0000000003", 200010, "contract", XLM_SAC,
            "d9e771ac73ec80503c7594f540d10ec068fb80981d11acea41aa193b7543c5ce", (None, None, True),
            [
                "transfer",
                "GDVKGWDSAGPP3HBWLUIBIKH4ZCHNFNQJ7J2HSPY3T7YEEJJXASVYWQV6",
                "CCLBPEYS3XFK65MYYXSBMOGKUI4ODN5S7SUZBGD7NALUQF64QILLX5B5",
                "native",
            ],
            "1570000000",
            (
                "transfer",
                "GDVKGWDSAGPP3HBWLUIBIKH4ZCHNFNQJ7J2HSPY3T7YEEJJXASVYWQV6",
                "CCLBPEYS3XFK65MYYXSBMOGKUI4ODN5S7SUZBGD7NALUQF64QILLX5B5",
                "XLM", "157", "1570000000", True,
            ),
        ),
        (
            "0000863490289963008-0000000010", 201047, "contract", XLM_SAC,
            "d0ee56996d4a750989c385bde0feb322825dbcf82e8053659806e79db1998828", (None, None, True),
            [
                "transfer",
                "GAEMCAFVKPNLX7JM7NWLRI3WS23VGAFWHGO2SY3THZWLUMIVLR27UADX",
                "CDSQXURN32GP4KN2FKRYAXDKZINCEQ4FGUWNRSBJL5YGVKKWH7WCI6MI",
                "native",
            ],
            "10",
            (
                "transfer",
                "GAEMCAFVKPNLX7JM7NWLRI3WS23VGAFWHGO2SY3THZWLUMIVLR27UADX",
                "CDSQXURN32GP4KN2FKRYAXDKZINCEQ4FGUWNRSBJL5YGVKKWH7WCI6MI",
                "XLM", "0.000001", "10", True,
            ),
        ),
    ],
    "docs-2026-any-events-fee-base64.json": [
        (
            "0016019351840751616-0000000000", 3729796, "contract", XLM_SAC,
            "dd2f693c5d874ed09f2de0a4edbc453a0a74fe3e44a40e8a4017bd47a1708ffd", (0, 0, False),
            ["fee", "GAB62KEKMKHDOMF3256P4CS7FCWRDUPT7M2CLD4JGKFWCA2H3DW3NRRB"],
            "100",
            ("fee", "GAB62KEKMKHDOMF3256P4CS7FCWRDUPT7M2CLD4JGKFWCA2H3DW3NRRB", None, "XLM", "0.00001", "100", True),
        ),
        (
            "0016019351840751616-0000000001", 3729796, "contract", XLM_SAC,
            "3fcd635d285c5b3a4d9b65a10f6c70c11132d8fafd32e82fea79103eb1a05924", (0, 0, True),
            ["fee", "GAPPLCK4IUR2GQN7IVXAVXA5VAE3I7BYO3TS4UFSPQ66EKAJ4MUPNEDY"],
            "300",
            ("fee", "GAPPLCK4IUR2GQN7IVXAVXA5VAE3I7BYO3TS4UFSPQ66EKAJ4MUPNEDY", None, "XLM", "0.00003", "300", True),
        ),
    ],
    "docs-2026-native-xlm-transfer-events-base64.json": [
        (
            "0016010972359577600-0000000001", 3727845, "contract", XLM_SAC,
            "a5c9247b77eb04c0d857934a2e988c408167976c8acbdf3d8acf64c44deb3beb", (0, 5, True),
            [
                "transfer",
                "GCHHLGOJVLRAPYBB6TR4NS4VRF5VW5RKZXQCVQUGMLGLXPTKJFCINQVE",
                "CCXP6YNFJZIDQD6N37DPCEKXJGLL56ZSAT5D5RPZG4NONL7IRAGWKFD2",
                "native",
            ],
            "3000000000",
            (
                "transfer",
                "GCHHLGOJVLRAPYBB6TR4NS4VRF5VW5RKZXQCVQUGMLGLXPTKJFCINQVE",
                "CCXP6YNFJZIDQD6N37DPCEKXJGLL56ZSAT5D5RPZG4NONL7IRAGWKFD2",
                "XLM", "300", "3000000000", True,
            ),
        ),
        (
            "0016010972359577600-0000000008", 3727845, "contract", XLM_SAC,
            "a5c9247b77eb04c0d857934a2e988c408167976c8acbdf3d8acf64c44deb3beb", (0, 5, True),
            [
                "transfer",
                "CBXVVJ5BOTUVRPXUY54LXFILWC4ZTJWRP2GIVHBMOEAOPHSLGHBG3NNP",
                "CAL6PHDJ7VULBPGSBSDGG34P4HG7R2QYJ2J6JVY3BH5CFFCUXGIC4P43",
                "native",
            ],
            "42558863",
            (
                "transfer",
                "CBXVVJ5BOTUVRPXUY54LXFILWC4ZTJWRP2GIVHBMOEAOPHSLGHBG3NNP",
                "CAL6PHDJ7VULBPGSBSDGG34P4HG7R2QYJ2J6JVY3BH5CFFCUXGIC4P43",
                "XLM", "4.2558863", "42558863", True,
            ),
        ),
    ],
    "docs-json-format-transfer-event-fragment-muxed.json": [
        (
            None, None, None, None, None, (None, None, True),
            [
                "transfer",
                "GD6MYLASTCZ3H4UFLH2YSIASHJNBFUCKC5YHGU44VCH2BGHN3WJQX6LG",
                "GA4PDUF3BLBSK47UTNY44AIZAP5EPHW2UIJRKB5HN76HHC55IWKSIHFD",
                "native",
            ],
            {"amount": "10000000", "to_muxed_id": "123456789"},
            # A fragment: no contractId, so the asset cannot be verified.
            (
                "transfer",
                "GD6MYLASTCZ3H4UFLH2YSIASHJNBFUCKC5YHGU44VCH2BGHN3WJQX6LG",
                "GA4PDUF3BLBSK47UTNY44AIZAP5EPHW2UIJRKB5HN76HHC55IWKSIHFD",
                "XLM", "1", "10000000", False,
            ),
        ),
    ],
    "docs-json-format-transfer-event-fragment-plain.json": [
        (
            None, None, None, None, None, (None, None, True),
            [
                "transfer",
                "GD6MYLASTCZ3H4UFLH2YSIASHJNBFUCKC5YHGU44VCH2BGHN3WJQX6LG",
                "GA4PDUF3BLBSK47UTNY44AIZAP5EPHW2UIJRKB5HN76HHC55IWKSIHFD",
                "native",
            ],
            "10000000",
            (
                "transfer",
                "GD6MYLASTCZ3H4UFLH2YSIASHJNBFUCKC5YHGU44VCH2BGHN3WJQX6LG",
                "GA4PDUF3BLBSK47UTNY44AIZAP5EPHW2UIJRKB5HN76HHC55IWKSIHFD",
                "XLM", "1", "10000000", False,
            ),
        ),
    ],
    "javasdk-events-contract-system-diagnostic.json": [
        (
            "0000000463856472064-0000000000", 108, "contract",
            "CBQHNAXSI55GX2GN6D67GK7BHVPSLJUGZQEU7WJ5LKR5PNUCGLIMAO4K",
            "db86e94aa98b7d38213c041ebbb727fbaabf0b7c435de594f36c2d51fc61926d", (1, 2, True),
            ["COUNTER", "increment"], 1, None,
        ),
        (
            "0000000476741373952-0000000000", 111, "system",
            "CBQHNAXSI55GX2GN6D67GK7BHVPSLJUGZQEU7WJ5LKR5PNUCGLIMAO4K",
            "db86e94aa98b7d38213c041ebbb727fbaabf0b7c435de594f36c2d51fc61926d", (3, 4, True),
            ["COUNTER", "increment"], 2, None,
        ),
        (
            "0000000489626275840-0000000000", 114, "diagnostic",
            "CBQHNAXSI55GX2GN6D67GK7BHVPSLJUGZQEU7WJ5LKR5PNUCGLIMAO4K",
            "db86e94aa98b7d38213c041ebbb727fbaabf0b7c435de594f36c2d51fc61926d", (5, 6, True),
            ["COUNTER", "increment"], 3, None,
        ),
    ],
    "pysdk-2023-counter-events-pagingtoken.json": [
        (
            "0000054713588387840-0000000000", 12739, "contract",
            "CBNYUGHFAIWK3HOINA2OIGOOBMQU4D3MPQWFYBTUYY5WY4FVDO2GWXUY",
            "db86e94aa98b7d38213c041ebbb727fbaabf0b7c435de594f36c2d51fc61926d", (None, None, True),
            ["COUNTER", "increment"], 1, None,
        ),
        (
            "0000054747948126208-0000000000", 12747, "contract",
            "CBNYUGHFAIWK3HOINA2OIGOOBMQU4D3MPQWFYBTUYY5WY4FVDO2GWXUY",
            "db86e94aa98b7d38213c041ebbb727fbaabf0b7c435de594f36c2d51fc61926d", (None, None, True),
            ["COUNTER", "increment"], 2, None,
        ),
    ],
    "pysdk-2025-empty-page-after-cursor.json": [],
    "pysdk-2025-fee-events-testnet.json": [
        (
            "0001370021552979968-0000000000", 318983, "contract", XLM_SAC,
            "4ea7a85ab79ed1a0bd2ae13c477d737986c275008ec27248e84b652dd3b02240", (0, 0, True),
            ["fee", "GCHTFFIG3GG7SWIKKH4NXF3SARDCOAOPCUTP4EOTNULDSAU75NOZ27LR"],
            "200",
            ("fee", "GCHTFFIG3GG7SWIKKH4NXF3SARDCOAOPCUTP4EOTNULDSAU75NOZ27LR", None, "XLM", "0.00002", "200", True),
        ),
        (
            "0001370038732849152-0000000000", 318987, "contract", XLM_SAC,
            "bdfe344060decbfd77ce0022538633de63947d85774434be8573b14fc870ce21", (0, 0, True),
            ["fee", "GBUVCM6XH3ZXP66L6YFF7OVIGXSQ5JB2SLNC45Q2GBFCGDIGVBMZ5HQI"],
            "10000100",
            (
                "fee", "GBUVCM6XH3ZXP66L6YFF7OVIGXSQ5JB2SLNC45Q2GBFCGDIGVBMZ5HQI", None,
                "XLM", "1.00001", "10000100", True,
            ),
        ),
    ],
}

TOKEN_SUMMARY = ("event_type", "from", "to", "asset_code", "amount", "amount_raw", "asset_verified")
BASE_KEYS = [
    "type",
    "id",
    "ledger",
    "ledger_closed_at",
    "transaction_hash",
    "contract_id",
    "operation_index",
    "transaction_index",
    "in_successful_contract_call",
    "event_kind",
    "topics",
    "data",
]
TOKEN_KEYS = BASE_KEYS + [
    "event_type",
    "from",
    "to",
    "account_ids",
    "asset_code",
    "asset_issuer",
    "amount",
    "amount_raw",
    "asset_verified",
    "to_muxed_id",
]


def fixtureEvents(name):
    result = loadRPCResult(name)
    # The json-format fragments are single event objects, not getEvents results.
    return result["events"] if "events" in result else [result]


class InterfaceTests(SynchronousTestCase):
    def test_processor(self):
        self.assertTrue(verifyObject(IProcessor, GetEventsRPC()))
        self.assertTrue(verifyClass(IProcessor, GetEventsRPC))

    def test_componentFactory(self):
        self.assertTrue(verifyObject(IComponentFactory, GetEventsRPC))

    def test_fromConfigDefaultsToMainnet(self):
        config, problems = GetEventsRPC.configSchema.validate({})
        self.assertEqual(list(problems), [])
        self.assertEqual(GetEventsRPC.fromConfig(config, None).network_passphrase, PUBLIC)

    def test_fromConfigNetworkName(self):
        config, problems = GetEventsRPC.configSchema.validate({"network": "testnet"})
        self.assertEqual(GetEventsRPC.fromConfig(config, None).network_passphrase, TESTNET)

    def test_fromConfigFollowsSourceNetwork(self):
        """
        The guide's C{config: {}} takes the network from the source's C{network} setting.
        """
        from stellarflow.pipeline import ComponentContext

        config, problems = GetEventsRPC.configSchema.validate({})
        context = ComponentContext(reactor=None, pipeline="p", network="testnet")
        self.assertEqual(GetEventsRPC.fromConfig(config, context).network_passphrase, TESTNET)
        config, problems = GetEventsRPC.configSchema.validate({"network": "mainnet"})
        self.assertEqual(GetEventsRPC.fromConfig(config, context).network_passphrase, PUBLIC)

    def test_configRejectsUnknownNetwork(self):
        config, problems = GetEventsRPC.configSchema.validate({"network": "mainnnet"}, "p")
        self.assertIsNone(config)
        self.assertEqual(len(problems), 1)
        self.assertEqual(problems[0].path, "p.network")
        self.assertIn("mainnnet", problems[0].message)
        self.assertIn("testnet", problems[0].message)


class NetworkTests(SynchronousTestCase):
    def test_defaultIsPublic(self):
        self.assertEqual(GetEventsRPC().network_passphrase, "Public Global Stellar Network ; September 2015")
        self.assertEqual(network.networkPassphrase(None), "Public Global Stellar Network ; September 2015")

    def test_names(self):
        for name in ["mainnet", "pubnet", "PUBNET", " public "]:
            self.assertEqual(network.networkPassphrase(name), "Public Global Stellar Network ; September 2015")
        self.assertEqual(network.networkPassphrase("testnet"), "Test SDF Network ; September 2015")
        self.assertEqual(network.networkPassphrase("futurenet"), "Test SDF Future Network ; October 2022")
        self.assertEqual(network.networkPassphrase("standalone"), "Standalone Network ; February 2017")

    def test_literalPassphrase(self):
        self.assertEqual(network.networkPassphrase("My Private Net ; 2026"), "My Private Net ; 2026")
        self.assertEqual(GetEventsRPC(TESTNET).network_passphrase, TESTNET)

    def test_typoIsRejected(self):
        self.assertRaises(ValueError, network.networkPassphrase, "testnett")
        self.assertRaises(ValueError, network.networkPassphrase, "")
        self.assertRaises(ValueError, GetEventsRPC, "mainet")


class FixtureTests(SynchronousTestCase):
    """
    Every recorded getEvents response, decoded to the values worked out by hand.
    """

    def test_everyFixtureHasExpectations(self):
        directory = fixturePath("rpc")
        names = {
            os.path.basename(p)
            for pattern in ("docs-*.json", "javasdk-*.json", "pysdk-*.json")
            for p in glob.glob(os.path.join(directory, pattern))
        }
        self.assertEqual(names, set(EXPECTED))

    def test_fixtures(self):
        rpc = GetEventsRPC("testnet")
        for name, rows in sorted(EXPECTED.items()):
            events = fixtureEvents(name)
            messages = rpc.process(events)
            self.assertEqual(len(messages), len(rows), name)
            for message, row in zip(messages, rows):
                eventId, ledger, kind, contract, txHash, indexes, topics, data, token = row
                where = "{} {}".format(name, eventId)
                self.assertNotIn("decode_error", message, where)
                self.assertEqual(list(message)[: len(BASE_KEYS)], BASE_KEYS, where)
                self.assertEqual(message["type"], "contract_event")
                self.assertEqual(
                    (message["id"], message["ledger"], message["event_kind"], message["contract_id"]),
                    (eventId, ledger, kind, contract),
                    where,
                )
                self.assertEqual(message["transaction_hash"], txHash, where)
                self.assertEqual(
                    (
                        message["operation_index"],
                        message["transaction_index"],
                        message["in_successful_contract_call"],
                    ),
                    indexes,
                    where,
                )
                self.assertEqual(message["topics"], topics, where)
                self.assertEqual(message["data"], data, where)
                if token is None:
                    self.assertEqual(list(message), BASE_KEYS, where)
                else:
                    self.assertEqual(list(message), TOKEN_KEYS, where)
                    self.assertEqual(tuple(message[k] for k in TOKEN_SUMMARY), token, where)
                    self.assertEqual(message["asset_issuer"], None, where)
                self.assertEqual(json.loads(json.dumps(message)), message, where)

    def test_ledgerClosedAtIsPassedThrough(self):
        [first, _] = GetEventsRPC().process(fixtureEvents("docs-2026-native-xlm-transfer-events-base64"))
        self.assertEqual(first["ledger_closed_at"], "2026-07-21T18:01:10Z")

    def test_mainnetDefaultDoesNotVerifyTestnetAssets(self):
        messages = GetEventsRPC().process(fixtureEvents("docs-2026-native-xlm-transfer-events-base64"))
        self.assertEqual([m["asset_verified"] for m in messages], [False, False])
        self.assertEqual([m["amount"] for m in messages], ["300", "4.2558863"])

    def test_jsonAndBase64FixtureEventsAgree(self):
        # The plain-transfer fragment is the json rendering of a transfer like those in the
        # base64 fixtures; re-encoding its values as base64 must give the same message.
        from stellar_sdk import xdr

        [event] = fixtureEvents("docs-json-format-transfer-event-fragment-muxed")
        asXdr = {
            "inSuccessfulContractCall": True,
            "topic": [xdr.SCVal.from_json_dict(t).to_xdr() for t in event["topicJson"]],
            "value": xdr.SCVal.from_json_dict(event["valueJson"]).to_xdr(),
        }
        self.assertEqual(decodeEvent(asXdr, TESTNET), decodeEvent(event, TESTNET))


def transfer(**overrides):
    event = {
        "type": "contract",
        "ledger": 3727845,
        "ledgerClosedAt": "2026-07-21T18:01:10Z",
        "contractId": XLM_SAC,
        "id": "0016010972359577600-0000000001",
        "transactionIndex": 5,
        "operationIndex": 0,
        "inSuccessfulContractCall": True,
        "topic": [
            "AAAADwAAAAh0cmFuc2Zlcg==",
            "AAAAEgAAAAAAAAAAjnWZyariB+Ah9OPGy5WJe1t2Ks3gKsKGYsy7vmpJRIY=",
            "AAAAEgAAAAGu/2GlTlA4D83fxvERV0mWvvsyBPo+xfk3Guav6IgNZQ==",
            "AAAADgAAAAZuYXRpdmUAAA==",
        ],
        "value": "AAAACgAAAAAAAAAAAAAAALLQXgA=",
        "txHash": "a5c9247b77eb04c0d857934a2e988c408167976c8acbdf3d8acf64c44deb3beb",
    }
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not None}


class FieldOrderTests(SynchronousTestCase):
    """
    Messages have the field names of L{stellarflow.message}, in its order: the order is part of
    the encoded text every consumer delivers.
    """

    def test_tokenEvent(self):
        self.assertEqual(tuple(decodeEvent(transfer(), TESTNET)), ENVELOPE_FIELDS + TOKEN_FIELDS)

    def test_otherEvent(self):
        m = decodeEvent({"id": "x", "ledger": 1, "type": "contract", "valueJson": {"u32": 7}})
        self.assertEqual(tuple(m), ENVELOPE_FIELDS)
        self.assertEqual(m["type"], CONTRACT_EVENT)

    def test_failedEvents(self):
        self.assertEqual(tuple(decodeEvent(transfer(value="garbage"))), ENVELOPE_FIELDS + (DECODE_ERROR,) + RAW_XDR_FIELDS)
        self.assertEqual(tuple(decodeEvent(transfer(ledger="x"))), ENVELOPE_FIELDS + (DECODE_ERROR,) + RAW_XDR_FIELDS)
        self.assertEqual(tuple(decodeEvent(None)), ENVELOPE_FIELDS + (DECODE_ERROR,) + RAW_XDR_FIELDS)
        bad = {"id": "e", "type": "contract", "topicJson": [{"nope": 1}], "valueJson": "void"}
        self.assertEqual(tuple(decodeEvent(bad)), ENVELOPE_FIELDS + (DECODE_ERROR,) + RAW_JSON_FIELDS)


class ShapeTests(SynchronousTestCase):
    """
    Variations of the event object that servers have sent over the years.
    """

    def test_stringLedger(self):
        self.assertEqual(decodeEvent(transfer(ledger="3727845"), TESTNET)["ledger"], 3727845)

    def test_legacyValueObject(self):
        m = decodeEvent(transfer(value={"xdr": "AAAACgAAAAAAAAAAAAAAALLQXgA="}), TESTNET)
        self.assertEqual((m["data"], m["amount"]), ("3000000000", "300"))

    def test_pagingTokenWithoutId(self):
        m = decodeEvent(transfer(id=None, pagingToken="0016010972359577600-0000000001"), TESTNET)
        self.assertEqual(m["id"], "0016010972359577600-0000000001")

    def test_optionalFieldsAbsent(self):
        m = decodeEvent(
            transfer(
                txHash=None,
                operationIndex=None,
                transactionIndex=None,
                inSuccessfulContractCall=None,
                ledgerClosedAt=None,
            ),
            TESTNET,
        )
        self.assertEqual(
            [
                m[k]
                for k in (
                    "transaction_hash",
                    "operation_index",
                    "transaction_index",
                    "in_successful_contract_call",
                    "ledger_closed_at",
                )
            ],
            [None] * 5,
        )
        self.assertEqual(m["event_type"], "transfer")

    def test_zeroTopics(self):
        for event in [transfer(topic=None), transfer(topic=[])]:
            m = decodeEvent(event, TESTNET)
            self.assertEqual((m["topics"], m["data"]), ([], "3000000000"))
            self.assertNotIn("event_type", m)
            self.assertNotIn("decode_error", m)

    def test_emptyContractId(self):
        m = decodeEvent(transfer(contractId=""), TESTNET)
        self.assertIsNone(m["contract_id"])
        self.assertIs(m["asset_verified"], False)

    def test_jsonFormatWithoutTopics(self):
        m = decodeEvent({"id": "x", "ledger": 1, "type": "contract", "valueJson": {"u32": 7}})
        self.assertEqual((m["topics"], m["data"]), ([], 7))


class DecodeErrorTests(SynchronousTestCase):
    def assertFailed(self, message, reason):
        self.assertIn(reason, message["decode_error"])
        self.assertEqual((message["topics"], message["data"]), ([], None))
        self.assertNotIn("event_type", message)
        json.dumps(message)

    def test_corruptTopicKeepsRawXdr(self):
        bad = transfer(topic=["AAAADwAAAAh0cmFuc2Zlcg==", "AAAAEgAAAA=="])
        m = decodeEvent(bad, TESTNET)
        self.assertFailed(m, "topic[1]")
        self.assertEqual(m["topics_xdr"], ["AAAADwAAAAh0cmFuc2Zlcg==", "AAAAEgAAAA=="])
        self.assertEqual(m["data_xdr"], "AAAACgAAAAAAAAAAAAAAALLQXgA=")
        # The envelope still identifies the event.
        self.assertEqual(
            (m["id"], m["ledger"], m["contract_id"]), ("0016010972359577600-0000000001", 3727845, XLM_SAC)
        )

    def test_corruptValueKeepsRawXdr(self):
        m = decodeEvent(transfer(value={"xdr": "%%%"}), TESTNET)
        self.assertFailed(m, "value")
        self.assertEqual(m["data_xdr"], "%%%")
        self.assertEqual(len(m["topics_xdr"]), 4)

    def test_missingValue(self):
        m = decodeEvent(transfer(value=None), TESTNET)
        self.assertFailed(m, "no value")

    def test_topicsNotAList(self):
        self.assertFailed(decodeEvent(transfer(topic="AAAADwAAAAh0cmFuc2Zlcg=="), TESTNET), "not a list")

    def test_corruptJsonKeepsRawJson(self):
        m = decodeEvent(
            {"id": "e", "type": "contract", "topicJson": [{"symbol": "x"}, {"nope": 1}], "valueJson": "void"}
        )
        self.assertFailed(m, "topic[1]")
        self.assertEqual(m["topics_json"], [{"symbol": "x"}, {"nope": 1}])
        self.assertEqual(m["data_json"], "void")
        self.assertEqual(m["id"], "e")

    def test_badEnvelope(self):
        m = decodeEvent(transfer(ledger="not a number"), TESTNET)
        self.assertFailed(m, "ledger")
        self.assertEqual(m["id"], "0016010972359577600-0000000001")
        self.assertEqual(len(m["topics_xdr"]), 4)
        self.assertFailed(decodeEvent(transfer(inSuccessfulContractCall="yes")), "inSuccessfulContractCall")

    def test_notAnObject(self):
        for raw in [None, "event", 5, ["topic"]]:
            m = decodeEvent(raw)
            self.assertFailed(m, "not a JSON object")
            self.assertEqual(m["type"], "contract_event")

    def test_unexpectedErrorIsContained(self):
        def explode(*args):
            raise ZeroDivisionError("bug")

        self.patch(processor.tokens, "recognise", explode)
        m = decodeEvent(transfer(), TESTNET)
        self.assertFailed(m, "ZeroDivisionError")
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_processKeepsOrderAroundBadEvents(self):
        events = [
            transfer(id="a"),
            transfer(id="b", value="garbage"),
            "not an event",
            transfer(id="d", ledger="7"),
        ]
        messages = GetEventsRPC("testnet").process(events)
        self.assertEqual([m["id"] for m in messages], ["a", "b", None, "d"])
        self.assertEqual(["decode_error" in m for m in messages], [False, True, True, False])
        self.assertEqual(messages[3]["amount"], "300")

    def test_processEmpty(self):
        self.assertEqual(GetEventsRPC().process([]), [])


class FixtureHelperTests(SynchronousTestCase):
    def test_existing(self):
        path = fixturePath("rpc", "pysdk-2025-empty-page-after-cursor.json")
        self.assertTrue(os.path.isabs(path))
        self.assertTrue(os.path.isfile(path))
        self.assertEqual(os.path.dirname(os.path.dirname(path)), os.path.join(fixtures.REPO_ROOT, "tests", "fixtures"))

    def test_missingSkips(self):
        self.patch(os, "environ", {})
        e = self.assertRaises(SkipTest, fixturePath, "rpc", "no-such.json")
        self.assertIn(os.path.join("rpc", "no-such.json"), str(e))

    def test_missingFailsUnderCi(self):
        self.patch(os, "environ", {"CI": "true"})
        e = self.assertRaises(FailTest, fixturePath, "rpc", "no-such.json")
        self.assertIn("required under CI", str(e))
        self.assertTrue(isinstance(e, AssertionError))

    def test_loadUnwrapsEnvelope(self):
        result = loadRPCResult("pysdk-2025-empty-page-after-cursor")
        self.assertEqual(result["cursor"], "0000054747948126210-0000000000")
        self.assertEqual(result["events"], [])

    def test_loadBareResult(self):
        result = loadRPCResult("docs-2024-native-xlm-transfer-events-g-to-g.json")
        self.assertEqual(result["cursor"], "0005121482212511744-0000000002")
        self.assertNotIn("jsonrpc", result)


class IndependentDecodingTests(SynchronousTestCase):
    """
    Cross-check topics of every base64 fixture event against stellar_sdk's own to_native.
    """

    def test_topicsMatchToNative(self):
        from stellar_sdk import Address, xdr

        for name in EXPECTED:
            for event, message in zip(fixtureEvents(name), GetEventsRPC().process(fixtureEvents(name))):
                for raw, decoded in zip(event.get("topic", []), message["topics"]):
                    native = scval.to_native(xdr.SCVal.from_xdr(raw))
                    if isinstance(native, Address):
                        native = native.address
                    elif isinstance(native, bytes):
                        native = native.hex()
                    self.assertEqual(decoded, native, name)
