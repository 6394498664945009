"""
Tests for L{stellarflow.meta.messages} on real ledgers: every payment and trade of pubnet ledger
53312000 by value, the testnet data-lake ledgers, recorded getLedgers/getLatestLedger results,
and mainnet protocol-27 transactions assembled into a ledger, whose payments and trades must
agree with the CAP-67 events of the same operations.

Expected values come from each fixture's ``.source.txt`` (counts and spot values derived by
Horizon's rules, independently of this code) and, for the full tables, from this code's output
checked against those spot values; the CAP-67 cross-check compares with what stellar-core itself
wrote.
"""

import collections
import sys
from decimal import Decimal

from stellar_sdk import StrKey
from twisted.trial.unittest import SynchronousTestCase

from stellarflow import positions
from stellarflow.events.network import PUBLIC, TESTNET
from stellarflow.message import MEMO_FIELDS, OPERATION_FIELDS, PAYMENT_FIELDS, PAYMENT_REQUIRED_FIELDS, TRADE_FIELDS
from stellarflow.meta import ledgerMessages
from stellarflow.meta.messages import PAYMENT_INDEX, TRADE_INDEX
from stellarflow.meta.payments import PAYMENT_OPERATIONS
from stellarflow.meta.trades import TRADE_OPERATIONS
from stellarflow.meta.transactions import ledgerTransactions
from stellarflow.testing.ledgerfiles import corpusLedger, fixtureLedgers

PUBNET_LEDGER = "galexie-pubnet-53312000.xdr.zstd"
USDC = "USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"

#: Apply order -> hash of the pubnet 53312000 transactions that paid or traded.
TRANSACTIONS = {
    11: "6cca0a56bc38270894af17b24c3a465fc676d43631f930b7ad2fac635efcd15a",
    16: "d3155309bb2f34343148b47f020d8fdb9c52c2f9332968f9004bc52d2d83aafc",
    27: "162d7b1dee4d786c1ad37e17e2a56683653f51c71b5b96cfc941614883a8ac9d",
    43: "fa2515cdd1ca720e36e1869672dd561d62d8321d5cdecc940bea2194f447d3a7",
    51: "c963811b89cfe9f31b1d34001a4d51da66fb9f344cc7024e4701af0b73ca5b29",
    66: "3641248600b43f32d07ec8491fe350eca573b53440285db912143e403aa1297c",
    68: "5f87f09c3def0605c4be95e2cae3b5616d64196465be0492ba7490f70e975a0f",
    81: "42e250a100087ca01db089b75054fb47bd95edd148316e40787383d7d8d7ead8",
    89: "90a09322ef859fdfc35a6dbf34063658c59116e8d1a1a4725d1a6fc156ab10f3",
    92: "bd4348a982dea69268b2378b6ece3065ecae90ff62a435a2cb9531b5eb30a900",
    94: "4cf21f421fa35c1296c31774777ddc5348bd847264580723dfb33d4d0a30da29",
    98: "9ce81a27a7e035a884f474e4f88c028670baf68c9312b3827656f421b136db47",
    108: "e4ce89c358b87a5fd9c287b72a63824853bd46b20609877acb2245660dc4ac51",
    113: "f28afd6d8558b54bdeffeedfcb3809ab3b90ee2b9ca28ac3fe4f04f2e56889ee",
    124: "972a7f6af3289d5cc4447dea6bb7e859458d27d6a1c6d4d874eaa29975a37044",
    133: "7c0d0c791cbe946157feeee6fc91aa326d2bfb04624f2eef23e82dc0e2aeb61d",
    155: "e8e563e8ebb5193e1ae7b0c921015e0ca9fde306f51950617bfbe69851cd5dfb",
    161: "d4b0204bf030abbafc6d142aee721d87b6ebe73b974cddd7bb7c70fe3f276d7d",
}

#: Every payment: (transaction index, operation index, operation type, from, to, asset, amount[,
#: source asset, source amount]), assets as CODE:ISSUER or XLM.
PUBNET_PAYMENTS = [
    (11, 0, 'path_payment_strict_receive', 'GBDG5RV7F6GVAIDBHSK7VMKYQ7SCOVYY2OG25D2TPHMDF5CNJY6HFUCK', 'GBDG5RV7F6GVAIDBHSK7VMKYQ7SCOVYY2OG25D2TPHMDF5CNJY6HFUCK',
     'XLM', '4.2902995', 'XLM', '4.2884589'),
    (16, 0, 'payment', 'GDUQXQAR4ECNAYCTGZAS4TH4KJJIZDLXPR5V2YYRFRGGQ3LTXBFTBVW6', 'GCOINSKIBDB7E4YUMZVEATT7JRIWLUPH6CBS63FYIZ4DWDXH3P6U6XIU',
     'XLM', '193.0779918'),
    (27, 0, 'payment', 'GDRAPJOZLRUXVC566YTLULCNXQFYJOND6QG2ZMOYZJQA27HBGWIVCRRT', 'GC5KSNARDE4ODHBJUICVDXSXDBJUK4YI633RENBUTOGQZ5YWORAXOHD6',
     'XLM', '0.5'),
    (51, 0, 'payment', 'GDU2KSJUCEEOVYTEPVCNQ4O6W5G6DORN4HZVBGTQWUUXSKZDR45VDK44', 'GBWFRIE3WRUQN4RNPNHZ2NKPDXXL7FV5JKV5PQQSCXH5HKET7OGA6RPT',
     'SSLX:GBHFGY3ZNEJWLNO4LBUKLYOCEK4V7ENEBJGPRHHX7JU47GWHBREH37UR', '843.8356116'),
    (66, 0, 'path_payment_strict_send', 'GBTVBYH3ZBLGTH5NTEJUEXVT3GPW7A72QDUXCMH3CL2JN2YWU74YD7VB', 'GBTVBYH3ZBLGTH5NTEJUEXVT3GPW7A72QDUXCMH3CL2JN2YWU74YD7VB',
     'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '0.0026504', 'LSP:GAB7STHVD5BDH3EEYXPI3OM7PCS4V443PYB5FNT6CFGJVPDLMKDM24WK', '0.6126088'),
    (68, 0, 'payment', 'GCYADK3EYKITDY5EBXFDJBNS4KKGQVJ7Q3PJT5WTM4AXD3QN7O2QZOAC', 'GAUA7XL5K54CC2DDGP77FJ2YBHRJLT36CPZDXWPM6MP7MANOGG77PNJU',
     'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '41.18'),
    (81, 0, 'payment', 'GAUA7XL5K54CC2DDGP77FJ2YBHRJLT36CPZDXWPM6MP7MANOGG77PNJU', 'GAXHR33SNL37OV55UQI4V7YXJJMFK6WTBQ2TBMY7TSWTLVIGM6YQJN5L',
     'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '130.2'),
    (81, 1, 'payment', 'GAUA7XL5K54CC2DDGP77FJ2YBHRJLT36CPZDXWPM6MP7MANOGG77PNJU', 'GCAQSQVXUJZPDND4EUWQYRCJ64IGQ3REQK2CVSXHUQQ26GCTEMIGJDSC',
     'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '1.32'),
    (89, 0, 'payment', 'GAUA7XL5K54CC2DDGP77FJ2YBHRJLT36CPZDXWPM6MP7MANOGG77PNJU', 'GDH7XC4K5ZIOADTGYGTYMEWCVHWME4VFY72VMIN22HTW2PPUGG36TUFY',
     'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '5'),
    (92, 0, 'path_payment_strict_receive', 'GBDG5RV7F6GVAIDBHSK7VMKYQ7SCOVYY2OG25D2TPHMDF5CNJY6HFUCK', 'GBDG5RV7F6GVAIDBHSK7VMKYQ7SCOVYY2OG25D2TPHMDF5CNJY6HFUCK',
     'XLM', '0.1948582', 'XLM', '0.1942414'),
    (94, 0, 'payment', 'GBPZMBTHSTLZNQUVOYU6WC7QFMDMM3UTRXL2RQKG2BNAADMNMGBIKRWV', 'GB4WS2WB3VYCH33MBSEDSAQBWBF2GVUXGLLPEQ557ERH77SJZSSHCARQ',
     'XLM', '10'),
    (98, 2, 'path_payment_strict_send', 'GBWZ5XFQU2YCRIZDJQYFHASWITWMCCT3TIESI2OBDSSPT44WWTBGMCPF', 'GBWZ5XFQU2YCRIZDJQYFHASWITWMCCT3TIESI2OBDSSPT44WWTBGMCPF',
     'XLM', '0.0354655', 'yXRP:GC2Z7TNT7PYAHHSHLBSO4XAIVYZGWKFBJ2ETYJBEIPM3ATYCSAR3YXRP', '51'),
    (108, 0, 'path_payment_strict_receive', 'GA4QH4AJGERVYX4PBY55JYTQJ4RTLJIBYV7OCYIV56LWZE5MVDH3R3UQ', 'GA4QH4AJGERVYX4PBY55JYTQJ4RTLJIBYV7OCYIV56LWZE5MVDH3R3UQ',
     'XLM', '0.8504311', 'XLM', '0.8494812'),
    (113, 0, 'path_payment_strict_send', 'GABIOWBZG6IXN7ASBBCDPJ2KK5OWQ76UDV3PN4WPQT5MUCFCUQR4JZLE', 'GABIOWBZG6IXN7ASBBCDPJ2KK5OWQ76UDV3PN4WPQT5MUCFCUQR4JZLE',
     'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '0.0036258', 'XLM', '0.0394541'),
    (133, 0, 'path_payment_strict_receive', 'GA4QH4AJGERVYX4PBY55JYTQJ4RTLJIBYV7OCYIV56LWZE5MVDH3R3UQ', 'GA4QH4AJGERVYX4PBY55JYTQJ4RTLJIBYV7OCYIV56LWZE5MVDH3R3UQ',
     'XLM', '2.7901997', 'XLM', '2.7900995'),
    (155, 0, 'path_payment_strict_send', 'GCSO6DAFG52JZDJOB2ZXY3FZBCFJIEINR2BXNA2TTTCMFAOL5SQMIPW6', 'GCSO6DAFG52JZDJOB2ZXY3FZBCFJIEINR2BXNA2TTTCMFAOL5SQMIPW6',
     'U:GBBBMSNN6ASLP36IB577XDUQTSLLSLAFHZTWNZO6AXTZ2KWTOJOM3AVX', '6647.0964465', '818:GBACAAL2B4E3B2CFEODT22E7R6W4THW5B7QPJUJXCBJP6TWKL4ZR6ILY', '223418'),
    (161, 0, 'payment', 'GDU2KSJUCEEOVYTEPVCNQ4O6W5G6DORN4HZVBGTQWUUXSKZDR45VDK44', 'GATDCX3WAUDSILC75NYS2NWESKL4ZDXYU5IREOZKCWKJNKUEQHAYQHHS',
     'SSLX:GBHFGY3ZNEJWLNO4LBUKLYOCEK4V7ENEBJGPRHHX7JU47GWHBREH37UR', '95.6723833'),
]

#: Every trade: (transaction index, operation index, atom order, operation type, seller or pool, offer id,
#: buyer, sold asset, sold amount, bought asset, bought amount, price n/d, buyer offer id).
PUBNET_TRADES = [
    (11, 0, 0, 'path_payment_strict_receive', 'GBD5U2WBPQIC6BVLLSXR5Q4MTOSYNPKCTVJBP4CXW2JR3DU4CH6Q2REX', '1614872181',
     'GBDG5RV7F6GVAIDBHSK7VMKYQ7SCOVYY2OG25D2TPHMDF5CNJY6HFUCK', 'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '0.3941098',
     'XLM', '4.2884589', '108813809/10000000', None),
    (11, 0, 1, 'path_payment_strict_receive', 'GBSQMWO5WQ7X5BM2VJBSOPECNVSJRLVFAR5BZK4RLFXLAACIYH7O2ARZ', '1613486941',
     'GBDG5RV7F6GVAIDBHSK7VMKYQ7SCOVYY2OG25D2TPHMDF5CNJY6HFUCK', 'XH5:GA6N7EVPWJL4266JTJN52TRIRPDAKMUJWFZ5Q2RN4Z23KXCKPUTURFBF', '7.4666072',
     'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '0.3941098', '10000000/189455004', None),
    (11, 0, 2, 'path_payment_strict_receive', '4816ceca535ffef323d9e8af39b8a0b8c5227fdd5bd9d7eb414b4caeff27f644', None,
     'GBDG5RV7F6GVAIDBHSK7VMKYQ7SCOVYY2OG25D2TPHMDF5CNJY6HFUCK', 'VELO:GDM4RQUQQUVSKQA7S6EM7XBZP3FCGH4Q7CL6TABQ7B2BEJ5ERARM2M5M', '27.4253946',
     'XH5:GA6N7EVPWJL4266JTJN52TRIRPDAKMUJWFZ5Q2RN4Z23KXCKPUTURFBF', '7.4666072', '74666072/274253946', None),
    (11, 0, 3, 'path_payment_strict_receive', '3fdb3afae74f0db26bd1b8cbf292743df687dde6d037cbf4790cba37dc63a110', None,
     'GBDG5RV7F6GVAIDBHSK7VMKYQ7SCOVYY2OG25D2TPHMDF5CNJY6HFUCK', 'XLM', '4.2902995',
     'VELO:GDM4RQUQQUVSKQA7S6EM7XBZP3FCGH4Q7CL6TABQ7B2BEJ5ERARM2M5M', '27.4253946', '274253946/42902995', None),
    (43, 0, 0, 'manage_buy_offer', 'GD2OIY4LTOTCKIKAFUYM2WJQQ2VB5XFPPZQ7LC2AVFSP2NZM7RTGRELO', '1597034178',
     'GBKPUWCQFAMZBYUAVC77CV4UQUCYXDS2DEUZ4OMFPN6UDFOIQRWJFHDG', 'SolarCity:GAIXQNNVKEKSGXDRRAWBQ3NLOJWCAVJYPIBPX6RHVU4LTPNGYOTJRELO', '0.0000003',
     'XLM', '0.0001719', '28647/50', None),
    (66, 0, 0, 'path_payment_strict_send', 'e4ff49687888e28d06efcaa45da4628a1381d96b1967074ab64ddd5109e8b8cf', None,
     'GBTVBYH3ZBLGTH5NTEJUEXVT3GPW7A72QDUXCMH3CL2JN2YWU74YD7VB', 'VELO:GDM4RQUQQUVSKQA7S6EM7XBZP3FCGH4Q7CL6TABQ7B2BEJ5ERARM2M5M', '0.1843636',
     'LSP:GAB7STHVD5BDH3EEYXPI3OM7PCS4V443PYB5FNT6CFGJVPDLMKDM24WK', '0.6126088', '6126088/1843636', None),
    (66, 0, 1, 'path_payment_strict_send', '3fdb3afae74f0db26bd1b8cbf292743df687dde6d037cbf4790cba37dc63a110', None,
     'GBTVBYH3ZBLGTH5NTEJUEXVT3GPW7A72QDUXCMH3CL2JN2YWU74YD7VB', 'XLM', '0.0288409',
     'VELO:GDM4RQUQQUVSKQA7S6EM7XBZP3FCGH4Q7CL6TABQ7B2BEJ5ERARM2M5M', '0.1843636', '1843636/288409', None),
    (66, 0, 2, 'path_payment_strict_send', 'GBD5U2WBPQIC6BVLLSXR5Q4MTOSYNPKCTVJBP4CXW2JR3DU4CH6Q2REX', '1614872181',
     'GBTVBYH3ZBLGTH5NTEJUEXVT3GPW7A72QDUXCMH3CL2JN2YWU74YD7VB', 'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '0.0026504',
     'XLM', '0.0288409', '108813809/10000000', None),
    (92, 0, 0, 'path_payment_strict_receive', 'GBD5U2WBPQIC6BVLLSXR5Q4MTOSYNPKCTVJBP4CXW2JR3DU4CH6Q2REX', '1614872181',
     'GBDG5RV7F6GVAIDBHSK7VMKYQ7SCOVYY2OG25D2TPHMDF5CNJY6HFUCK', 'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '0.0178508',
     'XLM', '0.1942414', '108813809/10000000', None),
    (92, 0, 1, 'path_payment_strict_receive', 'GCWNDCUAD2PEHIURBGCZUVQY35YRQMYF2KOWMA2IGMZ6SF3EBEV5RLMB', '1614861860',
     'GBDG5RV7F6GVAIDBHSK7VMKYQ7SCOVYY2OG25D2TPHMDF5CNJY6HFUCK', 'yUSDC:GDGTVWSM4MGS4T7Z6W4RPWOCHE2I6RDFCIFZGS3DOA63LWQTRNZNTTFF', '0.0178525',
     'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '0.0178508', '31247/31250', None),
    (92, 0, 2, 'path_payment_strict_receive', '33d0352bc3945df77712a941220882f1d294a959e717c3840b4aeea53c19b11b', None,
     'GBDG5RV7F6GVAIDBHSK7VMKYQ7SCOVYY2OG25D2TPHMDF5CNJY6HFUCK', 'SVR:GCUI2FTRKM3POHNW3JU46LH4AOWRO5RUV3XC2PYIY2VRMHVYYSLOMYS4', '0.0256248',
     'yUSDC:GDGTVWSM4MGS4T7Z6W4RPWOCHE2I6RDFCIFZGS3DOA63LWQTRNZNTTFF', '0.0178525', '178525/256248', None),
    (92, 0, 3, 'path_payment_strict_receive', '3b210c8d13f303b8abc6bc9696c887704e74780056cc03fbc67ea7bc9a48e7a9', None,
     'GBDG5RV7F6GVAIDBHSK7VMKYQ7SCOVYY2OG25D2TPHMDF5CNJY6HFUCK', 'PLAT:GBIMVJJJOTAKJYWJIY5YEXDZ4QIWQZLRJ4BXVHKH6EXWQ3WAEYBTPLAT', '0.0005611',
     'SVR:GCUI2FTRKM3POHNW3JU46LH4AOWRO5RUV3XC2PYIY2VRMHVYYSLOMYS4', '0.0256248', '256248/5611', None),
    (92, 0, 4, 'path_payment_strict_receive', '5a2c086980e1ac3320c9a4308d91194f6dd8a4d93aa938373e44601781666fa6', None,
     'GBDG5RV7F6GVAIDBHSK7VMKYQ7SCOVYY2OG25D2TPHMDF5CNJY6HFUCK', 'VELO:GDM4RQUQQUVSKQA7S6EM7XBZP3FCGH4Q7CL6TABQ7B2BEJ5ERARM2M5M', '1.2456176',
     'PLAT:GBIMVJJJOTAKJYWJIY5YEXDZ4QIWQZLRJ4BXVHKH6EXWQ3WAEYBTPLAT', '0.0005611', '5611/12456176', None),
    (92, 0, 5, 'path_payment_strict_receive', '3fdb3afae74f0db26bd1b8cbf292743df687dde6d037cbf4790cba37dc63a110', None,
     'GBDG5RV7F6GVAIDBHSK7VMKYQ7SCOVYY2OG25D2TPHMDF5CNJY6HFUCK', 'XLM', '0.1948582',
     'VELO:GDM4RQUQQUVSKQA7S6EM7XBZP3FCGH4Q7CL6TABQ7B2BEJ5ERARM2M5M', '1.2456176', '12456176/1948582', None),
    (98, 2, 0, 'path_payment_strict_send', '0ea8cae8715e059af328fb2a8e3a4700510fac728c14b9f0077512e79cb82b42', None,
     'GBWZ5XFQU2YCRIZDJQYFHASWITWMCCT3TIESI2OBDSSPT44WWTBGMCPF', 'XLM', '0.0354655',
     'yXRP:GC2Z7TNT7PYAHHSHLBSO4XAIVYZGWKFBJ2ETYJBEIPM3ATYCSAR3YXRP', '51', '510000000/354655', None),
    (108, 0, 0, 'path_payment_strict_receive', 'GBD5U2WBPQIC6BVLLSXR5Q4MTOSYNPKCTVJBP4CXW2JR3DU4CH6Q2REX', '1614872181',
     'GA4QH4AJGERVYX4PBY55JYTQJ4RTLJIBYV7OCYIV56LWZE5MVDH3R3UQ', 'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '0.0780674',
     'XLM', '0.8494812', '108813809/10000000', None),
    (108, 0, 1, 'path_payment_strict_receive', '85f17803368077c0be57c897d08105f5715b578db0e75c0ca269690c1f3d0fcf', None,
     'GA4QH4AJGERVYX4PBY55JYTQJ4RTLJIBYV7OCYIV56LWZE5MVDH3R3UQ', 'XAG:GB4I3O6EGAQU2HV62DKBPQXBCQVSCUHB3TLOGEPTVKFCZMPNGKYCLXAG', '503.289205',
     'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '0.0780674', '780674/5032892050', None),
    (108, 0, 2, 'path_payment_strict_receive', '0d451ad81e52413f3a098ea544da7229a9e227c193d04ca9fdb2fea0cc2f1257', None,
     'GA4QH4AJGERVYX4PBY55JYTQJ4RTLJIBYV7OCYIV56LWZE5MVDH3R3UQ', 'BASH:GDFQEHSE73OEQQA4M5P6HLSWDC6Q26YTO5KSNF33EJTBTCJJVCTMUSLX', '518.9767865',
     'XAG:GB4I3O6EGAQU2HV62DKBPQXBCQVSCUHB3TLOGEPTVKFCZMPNGKYCLXAG', '503.289205', '5032892050/5189767865', None),
    (108, 0, 3, 'path_payment_strict_receive', '5c85d9e16ace26f86b3cb3bbd4c401f122db733955f4bd64a04ee8b5dbb8aaeb', None,
     'GA4QH4AJGERVYX4PBY55JYTQJ4RTLJIBYV7OCYIV56LWZE5MVDH3R3UQ', 'VELO:GDM4RQUQQUVSKQA7S6EM7XBZP3FCGH4Q7CL6TABQ7B2BEJ5ERARM2M5M', '5.4363239',
     'BASH:GDFQEHSE73OEQQA4M5P6HLSWDC6Q26YTO5KSNF33EJTBTCJJVCTMUSLX', '518.9767865', '5189767865/54363239', None),
    (108, 0, 4, 'path_payment_strict_receive', '3fdb3afae74f0db26bd1b8cbf292743df687dde6d037cbf4790cba37dc63a110', None,
     'GA4QH4AJGERVYX4PBY55JYTQJ4RTLJIBYV7OCYIV56LWZE5MVDH3R3UQ', 'XLM', '0.8504311',
     'VELO:GDM4RQUQQUVSKQA7S6EM7XBZP3FCGH4Q7CL6TABQ7B2BEJ5ERARM2M5M', '5.4363239', '54363239/8504311', None),
    (113, 0, 0, 'path_payment_strict_send', 'GBD5U2WBPQIC6BVLLSXR5Q4MTOSYNPKCTVJBP4CXW2JR3DU4CH6Q2REX', '1614872181',
     'GABIOWBZG6IXN7ASBBCDPJ2KK5OWQ76UDV3PN4WPQT5MUCFCUQR4JZLE', 'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '0.0036258',
     'XLM', '0.0394541', '108813809/10000000', None),
    (124, 0, 0, 'manage_buy_offer', 'GDGAB6IRNBBCQWZOMQY3HZBLYJ3MITBHKJDLDUZIAZ72GJAR7OPEYXRP', '1600091249',
     'GCW3ZDZQUNJ4RTXMOEET2PTQTKNFBIDQ53YVZVDQSVNY555OHJHXYDA7', 'yXRP:GC2Z7TNT7PYAHHSHLBSO4XAIVYZGWKFBJ2ETYJBEIPM3ATYCSAR3YXRP', '0.0014',
     'XLM', '0.0000014', '1/1000', None),
    (133, 0, 0, 'path_payment_strict_receive', 'GDAVYIICLHJIQACEC3FQFQAZDMIR4IRUJMURN446DD6SLILZS2FPUSDC', '1614872187',
     'GA4QH4AJGERVYX4PBY55JYTQJ4RTLJIBYV7OCYIV56LWZE5MVDH3R3UQ', 'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '0.2564107',
     'XLM', '2.7900995', '5000000/459501', None),
    (133, 0, 1, 'path_payment_strict_receive', 'GBSQMWO5WQ7X5BM2VJBSOPECNVSJRLVFAR5BZK4RLFXLAACIYH7O2ARZ', '1613486941',
     'GA4QH4AJGERVYX4PBY55JYTQJ4RTLJIBYV7OCYIV56LWZE5MVDH3R3UQ', 'XH5:GA6N7EVPWJL4266JTJN52TRIRPDAKMUJWFZ5Q2RN4Z23KXCKPUTURFBF', '4.8578276',
     'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '0.2564107', '10000000/189455004', None),
    (133, 0, 2, 'path_payment_strict_receive', '4816ceca535ffef323d9e8af39b8a0b8c5227fdd5bd9d7eb414b4caeff27f644', None,
     'GA4QH4AJGERVYX4PBY55JYTQJ4RTLJIBYV7OCYIV56LWZE5MVDH3R3UQ', 'VELO:GDM4RQUQQUVSKQA7S6EM7XBZP3FCGH4Q7CL6TABQ7B2BEJ5ERARM2M5M', '17.8361892',
     'XH5:GA6N7EVPWJL4266JTJN52TRIRPDAKMUJWFZ5Q2RN4Z23KXCKPUTURFBF', '4.8578276', '48578276/178361892', None),
    (133, 0, 3, 'path_payment_strict_receive', '3fdb3afae74f0db26bd1b8cbf292743df687dde6d037cbf4790cba37dc63a110', None,
     'GA4QH4AJGERVYX4PBY55JYTQJ4RTLJIBYV7OCYIV56LWZE5MVDH3R3UQ', 'XLM', '2.7901997',
     'VELO:GDM4RQUQQUVSKQA7S6EM7XBZP3FCGH4Q7CL6TABQ7B2BEJ5ERARM2M5M', '17.8361892', '178361892/27901997', None),
    (155, 0, 0, 'path_payment_strict_send', '939f511557d90c7b6e1f498ba7e778423173b6684060733d077781847816a4e8', None,
     'GCSO6DAFG52JZDJOB2ZXY3FZBCFJIEINR2BXNA2TTTCMFAOL5SQMIPW6', 'AQUA:GBNZILSTVQZ4R7IKQDGHYGY2QXL5QOFJYQMXPKWRRM5PAV7Y4M67AQUA', '3.2488213',
     '818:GBACAAL2B4E3B2CFEODT22E7R6W4THW5B7QPJUJXCBJP6TWKL4ZR6ILY', '223418', '2234180000000/32488213', None),
    (155, 0, 1, 'path_payment_strict_send', '0b8aafefa1a40476e886929db7ad9ea038a5ade60584737c04045c6d018871f4', None,
     'GCSO6DAFG52JZDJOB2ZXY3FZBCFJIEINR2BXNA2TTTCMFAOL5SQMIPW6', 'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '0.0020344',
     'AQUA:GBNZILSTVQZ4R7IKQDGHYGY2QXL5QOFJYQMXPKWRRM5PAV7Y4M67AQUA', '3.2488213', '32488213/20344', None),
    (155, 0, 2, 'path_payment_strict_send', '810928f94023e3edcb486f949d34769f17468e4631a5955a06c44d808cd8cb59', None,
     'GCSO6DAFG52JZDJOB2ZXY3FZBCFJIEINR2BXNA2TTTCMFAOL5SQMIPW6', 'U:GBBBMSNN6ASLP36IB577XDUQTSLLSLAFHZTWNZO6AXTZ2KWTOJOM3AVX', '6647.0964465',
     'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '0.0020344', '20344/66470964465', None),
]

#: Every trade of the assembled corpus ledger (columns as L{PUBNET_TRADES}).
CORPUS_TRADES = [
    (15, 0, 0, 'path_payment_strict_send', 'a01fce811bd543490b587164a4b5083383c93fd1b78955f455e60bda33512159', None,
     'GBLVLKGRDU66WLWY4XRORJXCC4LDZ347AQTUYBEPBABIZTVITW2OAGIP', 'WGUARDIAN:GBYBVWOOVC4EJVRIF4HMWG5B7POLCS7JRPY5KYR3BCLEK24IJQOGUARD', '53.0880316',
     'yXLM:GARDNV3Q7YGT4AKSDF25LT32YSCCW4EV22Y2TV3I2PU2MMXJTEDL5T55', '0.000616', '6160/530880316', None),
    (15, 0, 1, 'path_payment_strict_send', '1b53c56c2a5db478b1446cba969cd1e19b293e30e0e6df6319642a499f545558', None,
     'GBLVLKGRDU66WLWY4XRORJXCC4LDZ347AQTUYBEPBABIZTVITW2OAGIP', 'CITRINE:GDKEKSAHODXRQ5H7MCFGCOJLSVBMK55E2AJ74BQ7EN7GMNOQE6WSONFQ', '22461501.2075993',
     'WGUARDIAN:GBYBVWOOVC4EJVRIF4HMWG5B7POLCS7JRPY5KYR3BCLEK24IJQOGUARD', '53.0880316', '530880316/224615012075993', None),
    (15, 0, 2, 'path_payment_strict_send', '3608fc069ba1c2d177910f96e8588db6d2f7aa2ea3ae3418e12b3910afff5db3', None,
     'GBLVLKGRDU66WLWY4XRORJXCC4LDZ347AQTUYBEPBABIZTVITW2OAGIP', 'XLM', '0.0006274',
     'CITRINE:GDKEKSAHODXRQ5H7MCFGCOJLSVBMK55E2AJ74BQ7EN7GMNOQE6WSONFQ', '22461501.2075993', '224615012075993/6274', None),
    (40, 0, 0, 'path_payment_strict_send', '6380c35065e6eaddef22db1ad47da8920d563b069cdd4d5207ee395e0630437e', None,
     'GADUP4XUZ5PUVDRX6DXZRTSVIIZW3CXOQPVGARBKBUVMPZNKG7DE4W4M', 'XLM', '0.0004225',
     'aTTaiN:GDKS7XTNEVCPGVUT2ZPPOU5CHHF3NH6NX7P3ROSFSDAO6NQDS3C74Y6C', '2.2441898', '22441898/4225', None),
    (40, 0, 1, 'path_payment_strict_send', '7a042a0446f59c1dbc621393b03dfa82d3e72c6be51bd50a685dd9a5c5d70e6e', None,
     'GADUP4XUZ5PUVDRX6DXZRTSVIIZW3CXOQPVGARBKBUVMPZNKG7DE4W4M', 'HU:GBGRBCUB6L7LH4JQ6EPDP7REH2DDACMCUQI76M3P6DM52QWU2Z5LIEVW', '0.0151053',
     'XLM', '0.0004225', '4225/151053', None),
    (40, 1, 0, 'path_payment_strict_send', 'dd0b867a356eb227d4da32fce85f23a3e78d5fe4c46e6ade1e0c640b1c6b0019', None,
     'GADUP4XUZ5PUVDRX6DXZRTSVIIZW3CXOQPVGARBKBUVMPZNKG7DE4W4M', 'T400:GBGRBCUB6L7LH4JQ6EPDP7REH2DDACMCUQI76M3P6DM52QWU2Z5LIEVW', '36.4060756',
     'aTTaiN:GDKS7XTNEVCPGVUT2ZPPOU5CHHF3NH6NX7P3ROSFSDAO6NQDS3C74Y6C', '2.2441898', '22441898/364060756', None),
    (40, 1, 1, 'path_payment_strict_send', '5ba8d44ab97aa843ed71ac9d5fcf1a49daa678af8061c616d89d25fd5141255b', None,
     'GADUP4XUZ5PUVDRX6DXZRTSVIIZW3CXOQPVGARBKBUVMPZNKG7DE4W4M', 'XLM', '0.0004248',
     'T400:GBGRBCUB6L7LH4JQ6EPDP7REH2DDACMCUQI76M3P6DM52QWU2Z5LIEVW', '36.4060756', '364060756/4248', None),
    (40, 1, 2, 'path_payment_strict_send', '7a042a0446f59c1dbc621393b03dfa82d3e72c6be51bd50a685dd9a5c5d70e6e', None,
     'GADUP4XUZ5PUVDRX6DXZRTSVIIZW3CXOQPVGARBKBUVMPZNKG7DE4W4M', 'HU:GBGRBCUB6L7LH4JQ6EPDP7REH2DDACMCUQI76M3P6DM52QWU2Z5LIEVW', '0.0151868',
     'XLM', '0.0004248', '4248/151868', None),
    (43, 0, 0, 'path_payment_strict_receive', '0833e2710d73f46c24f3e1c9fcbc8f1f85e86d894493a6ba33161ecde171539e', None,
     'GBJAMW27KDP6AUPFVFRM7TUE3RGGBGJCNXE5V4PJ3JLRYCXQ6VNNWTBO', 'XLM', '0.0280171',
     '51:GBN42AP5SK3IPTEJ2KAY7DLCAH6YQSMI3H6CCZLWW7KIJCYJ3X57JZ6R', '0.1965009', '1965009/280171', None),
    (43, 0, 1, 'path_payment_strict_receive', '7a042a0446f59c1dbc621393b03dfa82d3e72c6be51bd50a685dd9a5c5d70e6e', None,
     'GBJAMW27KDP6AUPFVFRM7TUE3RGGBGJCNXE5V4PJ3JLRYCXQ6VNNWTBO', 'HU:GBGRBCUB6L7LH4JQ6EPDP7REH2DDACMCUQI76M3P6DM52QWU2Z5LIEVW', '1',
     'XLM', '0.0280171', '280171/10000000', None),
    (43, 1, 0, 'path_payment_strict_receive', '552528a3db4042ef0b1ba36cf462a018462d62586205e82361404ddde46229da', None,
     'GBJAMW27KDP6AUPFVFRM7TUE3RGGBGJCNXE5V4PJ3JLRYCXQ6VNNWTBO', '5x:GBN42AP5SK3IPTEJ2KAY7DLCAH6YQSMI3H6CCZLWW7KIJCYJ3X57JZ6R', '0.0129127',
     '51:GBN42AP5SK3IPTEJ2KAY7DLCAH6YQSMI3H6CCZLWW7KIJCYJ3X57JZ6R', '0.1961805', '1961805/129127', None),
    (43, 1, 1, 'path_payment_strict_receive', 'aae65ca481d3e6acdfca760e85f1b249fffaa2d38a3bc815ef30bf0c7b3f3770', None,
     'GBJAMW27KDP6AUPFVFRM7TUE3RGGBGJCNXE5V4PJ3JLRYCXQ6VNNWTBO', 'XLM', '0.0281072',
     '5x:GBN42AP5SK3IPTEJ2KAY7DLCAH6YQSMI3H6CCZLWW7KIJCYJ3X57JZ6R', '0.0129127', '129127/281072', None),
    (43, 1, 2, 'path_payment_strict_receive', '7a042a0446f59c1dbc621393b03dfa82d3e72c6be51bd50a685dd9a5c5d70e6e', None,
     'GBJAMW27KDP6AUPFVFRM7TUE3RGGBGJCNXE5V4PJ3JLRYCXQ6VNNWTBO', 'HU:GBGRBCUB6L7LH4JQ6EPDP7REH2DDACMCUQI76M3P6DM52QWU2Z5LIEVW', '1',
     'XLM', '0.0281072', '281072/10000000', None),
    (43, 2, 0, 'path_payment_strict_receive', '0d710344ad4fc6cec477ce74ab935d53cbd1ea5e6db50fe6be4bf0085948eeb1', None,
     'GBJAMW27KDP6AUPFVFRM7TUE3RGGBGJCNXE5V4PJ3JLRYCXQ6VNNWTBO', 'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '0.0047975',
     '51:GBN42AP5SK3IPTEJ2KAY7DLCAH6YQSMI3H6CCZLWW7KIJCYJ3X57JZ6R', '0.1968873', '1968873/47975', None),
    (43, 2, 1, 'path_payment_strict_receive', 'GCEN7YK5YI2LX6LL4EPJSF2HFVAQM3PRWRDJA2AW5YD6UCNN3ZZRHQER', '1851644371',
     'GBJAMW27KDP6AUPFVFRM7TUE3RGGBGJCNXE5V4PJ3JLRYCXQ6VNNWTBO', 'XLM', '0.0281977',
     'USDC:GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN', '0.0047975', '1701361/10000000', None),
    (43, 2, 2, 'path_payment_strict_receive', '7a042a0446f59c1dbc621393b03dfa82d3e72c6be51bd50a685dd9a5c5d70e6e', None,
     'GBJAMW27KDP6AUPFVFRM7TUE3RGGBGJCNXE5V4PJ3JLRYCXQ6VNNWTBO', 'HU:GBGRBCUB6L7LH4JQ6EPDP7REH2DDACMCUQI76M3P6DM52QWU2Z5LIEVW', '1',
     'XLM', '0.0281977', '281977/10000000', None),
    (50, 0, 0, 'manage_buy_offer', 'GCBUHJN7JZ3OXSYX4FDJXV4JS3SNTTPH3SZCRALTSMXXPHY2XNJHMRXS', '1851644427',
     'GBXKW6ZBKXOLJFV4ZKG2AAXDAJ5X4LQU7CGDWH2L4Y3FYHH22RKFTGZP', 'LMX:GCJF4534PAFBOQ6R7QLVMRKUQV2AMNGEXGGDDN2ISYAIN5XPKTLUMEXO', '497',
     'XLM', '2.4544345', '9877/2000000', None),
]


def asset(code, issuer):
    return code if issuer is None else "{}:{}".format(code, issuer)


def paymentRow(m):
    row = (m["transaction_index"], m["operation_index"], m["operation_type"], m["from"], m["to"],
           asset(m["asset_code"], m["asset_issuer"]), m["amount"])
    if "source_amount" in m:
        row += (asset(m["source_asset_code"], m["source_asset_issuer"]), m["source_amount"])
    return row


def tradeRow(m):
    price = m["price"]
    return (m["transaction_index"], m["operation_index"], int(m["id"][20:]) - TRADE_INDEX, m["operation_type"],
            m["seller"] or m["liquidity_pool_id"], m["offer_id"], m["buyer"],
            asset(m["sold_asset_code"], m["sold_asset_issuer"]), m["sold_amount"],
            asset(m["bought_asset_code"], m["bought_asset_issuer"]), m["bought_amount"],
            "{}/{}".format(price["n"], price["d"]), m["buyer_offer_id"])


def ofType(messages, kind):
    return [m for m in messages if m["type"] == kind]


class MessageShapeMixin:
    """
    Checks every message list must pass: ids unique and in chain order, fields in the declared
    order, the envelope consistent with the id.
    """

    def assertWellFormed(self, messages, ledger):
        ids = [m["id"] for m in messages]
        self.assertEqual(len(set(ids)), len(ids), "duplicate ids")
        self.assertEqual(ids, sorted(ids), "messages out of id order")
        for m in messages:
            self.assertTrue(positions.isPosition(m["id"]), m["id"])
            self.assertEqual(positions.ledgerOf(m["id"]), ledger)
            self.assertEqual(m["ledger"], ledger)
            if m["type"] == "contract_event":
                continue
            toid, index = positions.split(m["id"])
            self.assertEqual(toid, positions.toid(ledger, m["transaction_index"], m["operation_index"]))
            keys = list(m)
            head = list(OPERATION_FIELDS) + [k for k in MEMO_FIELDS if k in m]
            self.assertEqual(keys[:len(head)], head)
            if m["type"] == "payment":
                self.assertGreaterEqual(index, PAYMENT_INDEX)
                self.assertEqual(keys[len(head):], [k for k in PAYMENT_FIELDS if k in m])
                self.assertTrue(set(PAYMENT_REQUIRED_FIELDS) <= set(m))
            else:
                self.assertTrue(TRADE_INDEX <= index < PAYMENT_INDEX)
                self.assertEqual(keys[len(head):], list(TRADE_FIELDS))


class PubnetLedgerTests(SynchronousTestCase, MessageShapeMixin):
    """
    Pubnet ledger 53312000 (protocol 21, meta v3): 163 transactions, 62 failed.
    """

    def setUp(self):
        (self.lcm,) = fixtureLedgers(PUBNET_LEDGER)
        self.messages = ledgerMessages(self.lcm, PUBLIC)

    def test_transactions(self):
        """
        The ledger pairs all 163 results with their envelopes; 62 failed.
        """
        transactions = ledgerTransactions(self.lcm, PUBLIC)
        self.assertEqual([t.index for t in transactions], list(range(1, 164)))
        self.assertEqual(sum(1 for t in transactions if not t.successful), 62)

    def test_counts(self):
        """
        17 payments (payment 9, path_payment_strict_receive 4, path_payment_strict_send 4) and 29 trades,
        as the source note derives them; no contract events (the one Soroban call emitted only
        diagnostic events, which getEvents does not serve).
        """
        counts = collections.Counter((m["type"], m.get("operation_type"), m.get("trade_type")) for m in self.messages)
        self.assertEqual(counts, {
            ("payment", "payment", None): 9,
            ("payment", "path_payment_strict_receive", None): 4,
            ("payment", "path_payment_strict_send", None): 4,
            ("trade", "path_payment_strict_receive", "liquidity_pool"): 12,
            ("trade", "path_payment_strict_receive", "orderbook"): 7,
            ("trade", "path_payment_strict_send", "liquidity_pool"): 6,
            ("trade", "path_payment_strict_send", "orderbook"): 2,
            ("trade", "manage_buy_offer", "orderbook"): 2,
        })
        payments = ofType(self.messages, "payment")
        self.assertEqual(sum(1 for p in payments if p["from"] == p["to"]), 8)

    def test_everyPayment(self):
        payments = ofType(self.messages, "payment")
        self.assertEqual([paymentRow(m) for m in payments], PUBNET_PAYMENTS)
        for m in payments:
            self.assertEqual(m["transaction_hash"], TRANSACTIONS[m["transaction_index"]])

    def test_everyTrade(self):
        trades = ofType(self.messages, "trade")
        self.assertEqual([tradeRow(m) for m in trades], PUBNET_TRADES)
        for m in trades:
            self.assertEqual(m["transaction_hash"], TRANSACTIONS[m["transaction_index"]])

    def test_spotValues(self):
        """
        The spot checks of the fixture's source note, written from the note.
        """
        byHash = collections.defaultdict(list)
        for m in self.messages:
            byHash[m["transaction_hash"]].append(m)

        (payment,) = byHash["d3155309bb2f34343148b47f020d8fdb9c52c2f9332968f9004bc52d2d83aafc"]
        self.assertEqual(
            (payment["operation_index"], payment["from"], payment["to"], payment["amount"], payment["asset_code"],
             payment["asset_issuer"]),
            (0, "GDUQXQAR4ECNAYCTGZAS4TH4KJJIZDLXPR5V2YYRFRGGQ3LTXBFTBVW6",
             "GCOINSKIBDB7E4YUMZVEATT7JRIWLUPH6CBS63FYIZ4DWDXH3P6U6XIU", "193.0779918", "XLM", None))

        (send,) = ofType(byHash["3641248600b43f32d07ec8491fe350eca573b53440285db912143e403aa1297c"], "payment")
        self.assertEqual(send["from"], "GBTVBYH3ZBLGTH5NTEJUEXVT3GPW7A72QDUXCMH3CL2JN2YWU74YD7VB")
        self.assertEqual(send["to"], send["from"])
        self.assertEqual((send["source_amount"], send["source_asset_code"]), ("0.6126088", "LSP"))
        self.assertEqual((send["amount"], asset(send["asset_code"], send["asset_issuer"])), ("0.0026504", USDC))

        trades = ofType(byHash["6cca0a56bc38270894af17b24c3a465fc676d43631f930b7ad2fac635efcd15a"], "trade")
        first, third = trades[0], trades[2]
        self.assertEqual(
            (first["trade_type"], first["seller"], first["offer_id"], first["sold_amount"], first["sold_asset_code"],
             first["buyer"], first["bought_amount"], first["bought_asset_code"]),
            ("orderbook", "GBD5U2WBPQIC6BVLLSXR5Q4MTOSYNPKCTVJBP4CXW2JR3DU4CH6Q2REX", "1614872181", "0.3941098", "USDC",
             "GBDG5RV7F6GVAIDBHSK7VMKYQ7SCOVYY2OG25D2TPHMDF5CNJY6HFUCK", "4.2884589", "XLM"))
        self.assertEqual(
            (third["trade_type"], third["liquidity_pool_id"], third["sold_amount"],
             asset(third["sold_asset_code"], third["sold_asset_issuer"]), third["bought_amount"],
             asset(third["bought_asset_code"], third["bought_asset_issuer"])),
            ("liquidity_pool", "4816ceca535ffef323d9e8af39b8a0b8c5227fdd5bd9d7eb414b4caeff27f644", "27.4253946",
             "VELO:GDM4RQUQQUVSKQA7S6EM7XBZP3FCGH4Q7CL6TABQ7B2BEJ5ERARM2M5M", "7.4666072",
             "XH5:GA6N7EVPWJL4266JTJN52TRIRPDAKMUJWFZ5Q2RN4Z23KXCKPUTURFBF"))

        (tiny,) = byHash["fa2515cdd1ca720e36e1869672dd561d62d8321d5cdecc940bea2194f447d3a7"]
        self.assertEqual(
            (tiny["operation_type"], tiny["seller"], tiny["offer_id"], tiny["sold_amount"],
             asset(tiny["sold_asset_code"], tiny["sold_asset_issuer"]), tiny["bought_amount"], tiny["bought_asset_code"]),
            ("manage_buy_offer", "GD2OIY4LTOTCKIKAFUYM2WJQQ2VB5XFPPZQ7LC2AVFSP2NZM7RTGRELO", "1597034178", "0.0000003",
             "SolarCity:GAIXQNNVKEKSGXDRRAWBQ3NLOJWCAVJYPIBPX6RHVU4LTPNGYOTJRELO", "0.0001719", "XLM"))

    def test_wholeMessages(self):
        """
        One payment and one trade, every field.
        """
        byId = {m["id"]: m for m in self.messages}
        self.assertEqual(byId["0228973296484417536-3221225472"], {
            "type": "payment",
            "id": "0228973296484417536-3221225472",
            "ledger": 53312000,
            "ledger_closed_at": "2024-09-02T10:50:19Z",
            "transaction_hash": "d3155309bb2f34343148b47f020d8fdb9c52c2f9332968f9004bc52d2d83aafc",
            "transaction_index": 16,
            "operation_index": 0,
            "operation_type": "payment",
            "memo_type": "id",
            "memo": "540825632",
            "from": "GDUQXQAR4ECNAYCTGZAS4TH4KJJIZDLXPR5V2YYRFRGGQ3LTXBFTBVW6",
            "to": "GCOINSKIBDB7E4YUMZVEATT7JRIWLUPH6CBS63FYIZ4DWDXH3P6U6XIU",
            "asset_code": "XLM",
            "asset_issuer": None,
            "amount": "193.0779918",
        })
        self.assertEqual(positions.toid(53312000, 16, 0), 228973296484417536)
        self.assertEqual(byId["0228973296484397056-2147483648"], {
            "type": "trade",
            "id": "0228973296484397056-2147483648",
            "ledger": 53312000,
            "ledger_closed_at": "2024-09-02T10:50:19Z",
            "transaction_hash": "6cca0a56bc38270894af17b24c3a465fc676d43631f930b7ad2fac635efcd15a",
            "transaction_index": 11,
            "operation_index": 0,
            "operation_type": "path_payment_strict_receive",
            "trade_type": "orderbook",
            "seller": "GBD5U2WBPQIC6BVLLSXR5Q4MTOSYNPKCTVJBP4CXW2JR3DU4CH6Q2REX",
            "liquidity_pool_id": None,
            "offer_id": "1614872181",
            "buyer": "GBDG5RV7F6GVAIDBHSK7VMKYQ7SCOVYY2OG25D2TPHMDF5CNJY6HFUCK",
            "buyer_offer_id": None,
            "sold_asset_code": "USDC",
            "sold_asset_issuer": "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN",
            "sold_amount": "0.3941098",
            "bought_asset_code": "XLM",
            "bought_asset_issuer": None,
            "bought_amount": "4.2884589",
            "price": {"n": "108813809", "d": "10000000"},
        })

    def test_wellFormed(self):
        self.assertWellFormed(self.messages, 53312000)

    def test_pathPaymentsChainTheirTrades(self):
        """
        A path payment's trades chain from what was sent to what arrived: the leading fills
        bought the source asset, ``source_amount`` in all, and the trailing fills sold the
        destination asset, ``amount`` in all.
        """
        checkPathPayments(self, self.messages, 8)

    def test_emit(self):
        """
        C{emit} selects the types; the selected messages are the same either way.
        """
        self.assertEqual(ledgerMessages(self.lcm, PUBLIC, emit=("trade",)), ofType(self.messages, "trade"))
        self.assertEqual(ledgerMessages(self.lcm, PUBLIC, emit=["payment"]), ofType(self.messages, "payment"))
        self.assertEqual(ledgerMessages(self.lcm, PUBLIC, emit=()), [])
        self.assertRaises(ValueError, ledgerMessages, self.lcm, PUBLIC, emit=("payments",))
        self.assertRaises(ValueError, ledgerMessages, self.lcm, PUBLIC, emit="payment")


def checkPathPayments(test, messages, expected):
    """
    Assert the chaining of L{PubnetLedgerTests.test_pathPaymentsChainTheirTrades} for every path
    payment with trades in C{messages}; C{expected} is how many there must be.
    """
    tradesOf = collections.defaultdict(list)
    for m in ofType(messages, "trade"):
        tradesOf[(m["transaction_index"], m["operation_index"])].append(m)
    checked = 0
    for p in ofType(messages, "payment"):
        trades = tradesOf.get((p["transaction_index"], p["operation_index"]))
        if not trades or "source_amount" not in p:
            continue
        source = (p["source_asset_code"], p["source_asset_issuer"])
        destination = (p["asset_code"], p["asset_issuer"])
        leading = []
        for t in trades:
            if (t["bought_asset_code"], t["bought_asset_issuer"]) != source:
                break
            leading.append(Decimal(t["bought_amount"]))
        trailing = []
        for t in reversed(trades):
            if (t["sold_asset_code"], t["sold_asset_issuer"]) != destination:
                break
            trailing.append(Decimal(t["sold_amount"]))
        test.assertEqual(sum(leading), Decimal(p["source_amount"]), p["id"])
        test.assertEqual(sum(trailing), Decimal(p["amount"]), p["id"])
        checked += 1
    test.assertEqual(checked, expected)


class TestnetLedgerTests(SynchronousTestCase, MessageShapeMixin):
    """
    Testnet data-lake ledgers 997-999 (protocol 20): create_accounts, the only account_merge, and
    payments that all failed.
    """

    def messagesOf(self, name):
        (lcm,) = fixtureLedgers(name)
        return ledgerMessages(lcm, TESTNET)

    def test_ledger997(self):
        """
        One create_account and the account_merge (3 failed transactions with 6 payment operations
        give nothing).
        """
        messages = self.messagesOf("galexie-testnet-FFFFFC1A--997.xdr.zst")
        self.assertWellFormed(messages, 997)
        self.assertEqual([paymentRow(m) + (m["transaction_hash"],) for m in messages], [
            (1, 0, "create_account", "GAIH3ULLFQ4DGSECF2AR555KZ4KNDGEKN4AFI4SU2M7B43MGK3QJZNSR",
             "GAKONCKYJ7PRRKBZSWVPG3MURUNX4H44AB3CU2YGVKF2FD7KXJBB3XID", "XLM", "10000",
             "d98fed625df4a6ad27ef25899f52ff7e2a357bf82cf5ca560e1b421b3de9d21e"),
            (7, 0, "account_merge", "GAF4PWQIUNHAT5PZPLZRPU3N2OOP2AM2ZNE7RZE7MZPACZPQAQAQSXE5",
             "GBFAIH5WKAJQ77NG6BZG7TGVGXHPX4SQLIJ7BENJMCVCZSUZPSISCLU5", "XLM", "9999.99999",
             "bece02dd8615960c1b7ab90dfebcf1817b84d23190a532da879167105abe0e9b"),
        ])
        self.assertEqual(messages[0]["ledger_closed_at"], "2024-02-06T19:00:39Z")

    def test_ledger998(self):
        """
        Two create_accounts; the 12 payment operations are all in failed transactions.
        """
        messages = self.messagesOf("galexie-testnet-FFFFFC19--998.xdr.zst")
        self.assertWellFormed(messages, 998)
        self.assertEqual([paymentRow(m) for m in messages], [
            (1, 0, "create_account", "GAIH3ULLFQ4DGSECF2AR555KZ4KNDGEKN4AFI4SU2M7B43MGK3QJZNSR",
             "GBK5YNSHI4OLVDVHARTSCOC3HCU7FXZDZLMY35O64E6C6LQ53C7EWVBS", "XLM", "10000"),
            (2, 0, "create_account", "GDD73W5XEYFEA5Z5S5BD6GFWTKBPAJIDXC3L37WEX47NVVQ2UC6ESICX",
             "GDFN6MX6EET2IEDUDOH22ZODTOUH5OIQAUTHIVERECZ6ZRWNCVZLCZTT", "XLM", "5"),
        ])

    def test_ledger999(self):
        messages = self.messagesOf("galexie-testnet-FFFFFC18--999.xdr.zst")
        self.assertWellFormed(messages, 999)
        self.assertEqual([paymentRow(m) for m in messages], [
            (1, 0, "create_account", "GAIH3ULLFQ4DGSECF2AR555KZ4KNDGEKN4AFI4SU2M7B43MGK3QJZNSR",
             "GDW5ES4ZDBEHWRJYGQQDSNDNJ3DCWZRTP4HXBV2HPT45SGDSQLL64VOU", "XLM", "10000"),
            (2, 0, "create_account", "GAIH3ULLFQ4DGSECF2AR555KZ4KNDGEKN4AFI4SU2M7B43MGK3QJZNSR",
             "GDJHCKILHLOTNC3EPSDAJOIHU4L54MIFUZZHQPQBBE3EYSWM2QUMRWVK", "XLM", "10000"),
        ])


class GetLedgersResultTests(SynchronousTestCase):
    """
    Recorded getLedgers and getLatestLedger results.
    """

    def test_failedTransactionsWithSuccessfulOperations(self):
        """
        Testnet 36233-36234: four failed transactions with eight payment operations, one of which
        says PAYMENT_SUCCESS; nothing happened, so nothing is emitted.
        """
        empty, failing = fixtureLedgers("docs-getledgers-testnet-36233-limit2.json")
        self.assertEqual(ledgerMessages(empty, TESTNET), [])
        transactions = ledgerTransactions(failing, TESTNET)
        self.assertEqual([t.successful for t in transactions], [False] * 4)
        succeeded = [r for t in transactions for r in t.results if r.tr.payment_result.code.value == 0]
        self.assertEqual(len(succeeded), 1)
        self.assertEqual(ledgerMessages(failing, TESTNET), [])

    def test_localEmptyLedgers(self):
        ledgers = fixtureLedgers("pysdk-getledgers-local-10-11.json")
        self.assertEqual([ledgerMessages(lcm, TESTNET) for lcm in ledgers], [[], []])

    def test_protocol25CreateAccount(self):
        """
        Testnet 1283415 (LedgerCloseMeta v2, meta v4): a create_account, its CAP-67 transfer and
        the fee its transaction paid, before all transactions.
        """
        (lcm,) = fixtureLedgers("pysdk-getlatestledger-testnet-1283415-lcm-v2.json")
        messages = ledgerMessages(lcm, TESTNET)
        funder = "GAIH3ULLFQ4DGSECF2AR555KZ4KNDGEKN4AFI4SU2M7B43MGK3QJZNSR"
        account = "GDQM2H7KPTQVFG4RVRYIJL3UURTLIXH7LONPTLJ7OKUSPJDOFNGQTJJL"
        txHash = "eeee8c3d932cbc6007c14b75998c59599ea29f265a96e8a889d27c0d459fd183"
        self.assertEqual([(m["type"], m["id"]) for m in messages], [
            ("contract_event", positions.eventId(1283415, 0, 0, 0)),
            ("contract_event", positions.eventId(1283415, 1, 0, 0)),
            ("payment", positions.eventId(1283415, 1, 0, PAYMENT_INDEX)),
        ])
        fee, transfer, payment = messages
        self.assertEqual(
            (fee["event_type"], fee["from"], fee["amount"], fee["transaction_index"], fee["operation_index"],
             fee["transaction_hash"], fee["in_successful_contract_call"]),
            ("fee", "GB64OULSOU3Q7VTLEFEUUL7X4UZBIDSN7KFAERGQ6PUGBCRD6ZS73MZZ", "0.00001", 0, 0, txHash, True))
        self.assertEqual(
            (transfer["event_type"], transfer["from"], transfer["to"], transfer["asset_code"], transfer["amount"],
             transfer["asset_verified"], transfer["transaction_index"], transfer["operation_index"]),
            ("transfer", funder, account, "XLM", "10000", True, 1, 0))
        self.assertEqual(paymentRow(payment), (1, 0, "create_account", funder, account, "XLM", "10000"))
        self.assertEqual(payment["ledger_closed_at"], "2026-03-02T01:57:09Z")
        self.assertEqual(payment["transaction_hash"], txHash)


# -- the CAP-67 cross-check -------------------------------------------------------------------------------------------


def _party(value):
    """A trade's pool id as the ``L...`` address CAP-67 events name it by."""
    if value is not None and len(value) == 64:
        return StrKey.encode_liquidity_pool(bytes.fromhex(value))
    return value


def _movement(frm, to, code, issuer, amount):
    """
    The CAP-67 event of C{amount} moving from C{frm} to C{to}: a transfer, or a mint when the
    issuer sends its asset, a burn when it receives it.
    """
    if issuer is not None and frm == issuer:
        return ("mint", None, to, code, issuer, amount)
    if issuer is not None and to == issuer:
        return ("burn", frm, None, code, issuer, amount)
    return ("transfer", frm, to, code, issuer, amount)


def expectedMovements(messages):
    """
    (transaction index, operation index) -> the token movements the payments and trades of the
    operation imply, in order: per trade the buyer pays the seller what the seller bought and the
    seller pays the buyer what it sold; then the payment.
    """
    moves = collections.defaultdict(list)
    for m in messages:
        key = (m["transaction_index"], m["operation_index"])
        if m["type"] == "trade":
            seller = m["seller"] or _party(m["liquidity_pool_id"])
            moves[key].append(_movement(m["buyer"], seller, m["bought_asset_code"], m["bought_asset_issuer"],
                                        m["bought_amount"]))
            moves[key].append(_movement(seller, m["buyer"], m["sold_asset_code"], m["sold_asset_issuer"],
                                        m["sold_amount"]))
        elif m["type"] == "payment":
            moves[key].append(_movement(m["from"], m["to"], m["asset_code"], m["asset_issuer"], m["amount"]))
    return moves


def eventMovements(messages):
    """
    (transaction index, operation index) -> the token movements CAP-67 events of the operation
    say happened, in order.
    """
    moves = collections.defaultdict(list)
    for m in ofType(messages, "contract_event"):
        if m.get("event_type") in ("transfer", "mint", "burn", "clawback"):
            assert m["asset_verified"] is True, m
            moves[(m["transaction_index"], m["operation_index"])].append(
                (m["event_type"], m["from"], m["to"], m["asset_code"], m["asset_issuer"], m["amount"]))
    return moves


def crossCheck(test, lcm, passphrase):
    """
    Assert that the payments and trades of every payment or trade operation of C{lcm}'s
    successful transactions agree with that operation's CAP-67 events; return how many
    operations were compared.
    """
    messages = ledgerMessages(lcm, passphrase)
    expected = expectedMovements(messages)
    actual = eventMovements(messages)
    compared = 0
    for tx in ledgerTransactions(lcm, passphrase):
        if not tx.successful:
            continue
        for opIndex, op in enumerate(tx.operations):
            kind = op.body.type.value
            if kind == 24 or kind not in PAYMENT_OPERATIONS | TRADE_OPERATIONS:
                continue
            key = (tx.index, opIndex)
            test.assertEqual(expected.get(key, []), actual.get(key, []), "transaction {} operation {}".format(*key))
            compared += 1
    return compared


class CorpusLedgerTests(SynchronousTestCase, MessageShapeMixin):
    """
    50 mainnet protocol-27 transactions of ledger 63800108 (meta v4 with CAP-67 events),
    assembled into a LedgerCloseMeta v2.
    """

    def setUp(self):
        self.lcm = corpusLedger()
        self.messages = ledgerMessages(self.lcm, PUBLIC)

    def test_counts(self):
        """
        129 payments and 17 trades, as the source note derives them; every transaction's fee
        event and every classic operation's CAP-67 events.
        """
        counts = collections.Counter(
            (m["type"], m.get("operation_type") or m.get("event_type"), m.get("trade_type")) for m in self.messages)
        self.assertEqual(counts, {
            ("payment", "payment", None): 123,
            ("payment", "path_payment_strict_send", None): 3,
            ("payment", "path_payment_strict_receive", None): 3,
            ("trade", "path_payment_strict_send", "liquidity_pool"): 8,
            ("trade", "path_payment_strict_receive", "liquidity_pool"): 7,
            ("trade", "path_payment_strict_receive", "orderbook"): 1,
            ("trade", "manage_buy_offer", "orderbook"): 1,
            ("contract_event", "fee", None): 50,
            ("contract_event", "transfer", None): 73,
            ("contract_event", "mint", None): 90,
        })
        self.assertWellFormed(self.messages, 63800108)

    def test_everyTrade(self):
        self.assertEqual([tradeRow(m) for m in ofType(self.messages, "trade")], CORPUS_TRADES)

    def test_spotValues(self):
        """
        The source note's path payment: three pool hops, 0.0006160 yXLM sent for 0.0006274 XLM.
        """
        messages = [m for m in self.messages
                    if m["transaction_hash"] == "53d69e4792c53f137340177405c362eebcbd2e700438a8b623ff47198000293b"
                    and m["type"] != "contract_event"]
        account = "GBLVLKGRDU66WLWY4XRORJXCC4LDZ347AQTUYBEPBABIZTVITW2OAGIP"
        self.assertEqual([m["type"] for m in messages], ["trade"] * 3 + ["payment"])
        self.assertEqual([m["liquidity_pool_id"][:8] for m in messages[:3]], ["a01fce81", "1b53c56c", "3608fc06"])
        self.assertEqual(paymentRow(messages[3]), (
            15, 0, "path_payment_strict_send", account, account, "XLM", "0.0006274",
            "yXLM:GARDNV3Q7YGT4AKSDF25LT32YSCCW4EV22Y2TV3I2PU2MMXJTEDL5T55", "0.000616"))

    def test_paymentsAndTradesAgreeWithEvents(self):
        """
        Every payment and trade agrees with the CAP-67 transfer/mint/burn events of its operation
        (accounts, assets, amounts, order), and operations that neither paid nor traded moved
        nothing: 115 offer and path payment operations and 123 payments compared.
        """
        self.assertEqual(crossCheck(self, self.lcm, PUBLIC), 123 + 56 + 53 + 3 + 3)

    def test_pathPaymentsChainTheirTrades(self):
        checkPathPayments(self, self.messages, 6)

    def test_crossCheckFailsOnAMismatch(self):
        """
        The cross-check is not vacuous: one payment amount off by a stroop fails it.
        """
        original = ledgerMessages

        def tampered(lcm, passphrase, emit=("payment", "trade", "contract_event")):
            messages = original(lcm, passphrase, emit)
            for m in messages:
                if m["type"] == "payment":
                    m["amount"] = str(Decimal(m["amount"]) + Decimal("0.0000001"))
                    break
            return messages

        self.patch(sys.modules[__name__], "ledgerMessages", tampered)
        self.assertRaises(self.failureException, crossCheck, self, self.lcm, PUBLIC)
