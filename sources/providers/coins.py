"""How the same coin is named by each provider, keyed by its CoinGecko id (the id our payloads use).

Only identities live here, never prices. Coins missing from the table still work with CoinGecko, and with
CoinPaprika through its id minus the symbol prefix (``sol-solana`` -> ``solana``), which matches CoinGecko for
most coins; the table settles the ones where the two disagree, and names the exchanges' symbols.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Coin:
    id: str  # CoinGecko id
    symbol: str
    name: str
    paprika: str | None = None
    kraken: str | None = None  # Kraken's base asset code in its pair names (XBT for bitcoin)
    coinbase: str | None = None  # Coinbase Exchange base currency (product "<base>-USD")
    binance: str | None = None  # Binance base asset (symbol "<base>USDT")


COINS: tuple[Coin, ...] = (
    Coin("bitcoin", "BTC", "Bitcoin", "btc-bitcoin", "XBT", "BTC", "BTC"),
    Coin("ethereum", "ETH", "Ethereum", "eth-ethereum", "ETH", "ETH", "ETH"),
    Coin("tether", "USDT", "Tether", "usdt-tether", "USDT", "USDT", None),
    Coin("ripple", "XRP", "XRP", "xrp-xrp", "XRP", "XRP", "XRP"),
    Coin("binancecoin", "BNB", "BNB", "bnb-binance-coin", None, None, "BNB"),
    Coin("solana", "SOL", "Solana", "sol-solana", "SOL", "SOL", "SOL"),
    Coin("usd-coin", "USDC", "USDC", "usdc-usd-coin", "USDC", None, "USDC"),
    Coin("dogecoin", "DOGE", "Dogecoin", "doge-dogecoin", "XDG", "DOGE", "DOGE"),
    Coin("tron", "TRX", "TRON", "trx-tron", "TRX", None, "TRX"),
    Coin("cardano", "ADA", "Cardano", "ada-cardano", "ADA", "ADA", "ADA"),
    Coin("chainlink", "LINK", "Chainlink", "link-chainlink", "LINK", "LINK", "LINK"),
    Coin("avalanche-2", "AVAX", "Avalanche", "avax-avalanche", "AVAX", "AVAX", "AVAX"),
    Coin("stellar", "XLM", "Stellar", "xlm-stellar", "XLM", "XLM", "XLM"),
    Coin("sui", "SUI", "Sui", "sui-sui", "SUI", "SUI", "SUI"),
    Coin("bitcoin-cash", "BCH", "Bitcoin Cash", "bch-bitcoin-cash", "BCH", "BCH", "BCH"),
    Coin("hedera-hashgraph", "HBAR", "Hedera", "hbar-hedera-hashgraph", "HBAR", "HBAR", "HBAR"),
    Coin("litecoin", "LTC", "Litecoin", "ltc-litecoin", "LTC", "LTC", "LTC"),
    Coin("shiba-inu", "SHIB", "Shiba Inu", "shib-shiba-inu", "SHIB", "SHIB", "SHIB"),
    Coin("polkadot", "DOT", "Polkadot", "dot-polkadot", "DOT", "DOT", "DOT"),
    Coin("the-open-network", "TON", "Toncoin", "ton-toncoin", "TON", None, "TON"),
    Coin("monero", "XMR", "Monero", "xmr-monero", "XMR", None, None),
    Coin("uniswap", "UNI", "Uniswap", "uni-uniswap", "UNI", "UNI", "UNI"),
    Coin("dai", "DAI", "Dai", "dai-dai", "DAI", "DAI", None),
    Coin("pepe", "PEPE", "Pepe", "pepe-pepe", "PEPE", "PEPE", "PEPE"),
    Coin("aave", "AAVE", "Aave", "aave-new", "AAVE", "AAVE", "AAVE"),
    Coin("near", "NEAR", "NEAR Protocol", "near-near-protocol", "NEAR", "NEAR", "NEAR"),
    Coin("aptos", "APT", "Aptos", "apt-aptos", "APT", "APT", "APT"),
    Coin("internet-computer", "ICP", "Internet Computer", "icp-internet-computer", "ICP", "ICP", "ICP"),
    Coin("ethereum-classic", "ETC", "Ethereum Classic", "etc-ethereum-classic", "ETC", "ETC", "ETC"),
    Coin("cosmos", "ATOM", "Cosmos Hub", "atom-cosmos", "ATOM", "ATOM", "ATOM"),
    Coin("polygon-ecosystem-token", "POL", "POL (ex-MATIC)", "pol-polygon-ecosystem-token", "POL", "POL", "POL"),
    Coin("filecoin", "FIL", "Filecoin", "fil-filecoin", "FIL", "FIL", "FIL"),
    Coin("arbitrum", "ARB", "Arbitrum", "arb-arbitrum", "ARB", "ARB", "ARB"),
    Coin("optimism", "OP", "Optimism", "op-optimism", "OP", "OP", "OP"),
    Coin("algorand", "ALGO", "Algorand", "algo-algorand", "ALGO", "ALGO", "ALGO"),
    Coin("tezos", "XTZ", "Tezos", "xtz-tezos", "XTZ", "XTZ", "XTZ"),
    Coin("zcash", "ZEC", "Zcash", "zec-zcash", "ZEC", "ZEC", "ZEC"),
    Coin("maker", "MKR", "Maker", "mkr-maker", "MKR", "MKR", "MKR"),
    Coin("render-token", "RENDER", "Render", "render-render-token", "RENDER", "RENDER", "RENDER"),
    Coin("injective-protocol", "INJ", "Injective", "inj-injective-protocol", "INJ", "INJ", "INJ"),
)

BY_ID: dict[str, Coin] = {c.id: c for c in COINS}
BY_PAPRIKA: dict[str, Coin] = {c.paprika: c for c in COINS if c.paprika}
BY_KRAKEN: dict[str, Coin] = {c.kraken: c for c in COINS if c.kraken}
BY_COINBASE: dict[str, Coin] = {c.coinbase: c for c in COINS if c.coinbase}
BY_BINANCE: dict[str, Coin] = {c.binance: c for c in COINS if c.binance}
BY_SYMBOL: dict[str, Coin] = {c.symbol: c for c in COINS}
#: Table order (roughly by market cap), for providers that give no rank of their own.
TABLE_ORDER: dict[str, int] = {c.id: i for i, c in enumerate(COINS)}

#: Stablecoins meant to trade at one US dollar (CoinGecko ids): a price far from $1 is a de-peg, or a figure in
#: another currency. Left out: former stablecoins (terrausd), tokens that were renamed
#: into something else (frax), and ones whose peg is to another currency or to gold.
USD_STABLECOINS: frozenset[str] = frozenset({
    "tether", "usd-coin", "dai", "usds", "true-usd", "first-digital-usd", "binance-usd", "paypal-usd",
    "paxos-standard", "gemini-dollar", "liquity-usd", "usdd", "ethena-usde",
})


def from_paprika(paprika_id: str, symbol: str) -> str:
    """Our (CoinGecko) id for a CoinPaprika id."""
    known = BY_PAPRIKA.get(paprika_id)
    if known:
        return known.id
    prefix = symbol.lower() + "-"
    return paprika_id[len(prefix):] if paprika_id.startswith(prefix) else paprika_id
