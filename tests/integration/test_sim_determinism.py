"""The same seed gives byte-identical data, over the API as well as in memory."""

from __future__ import annotations

import httpx

from blingsync.simulator.model import NfeSituacao
from tests.conftest import Bling, make_sim


async def _snapshot(seed: int) -> list[bytes]:
    sim = make_sim(seed=seed, accounts=2, invoices=150)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sim.app),
                                 base_url="http://b.test") as http:
        bling = Bling(sim, http)
        out: list[bytes] = []
        for index in range(2):
            auth = await bling.bearer(index)
            for path in ("/Api/v3/nfe", "/Api/v3/nfce", "/Api/v3/pedidos/vendas"):
                for situacao in ((None, 2, 6) if "nf" in path else (None,)):
                    params = {"situacao": situacao} if situacao else {}
                    page = 1
                    while True:
                        r = await bling.get(path, auth, pagina=page, **params)
                        if r.json()["data"] == []:
                            break
                        out.append(r.content)
                        page += 1
            company = bling.company(index)
            for note in sorted(company.notes.values(), key=lambda n: n.id)[:40]:
                r = await bling.get(f"/Api/v3/nfe/{note.id}", auth)
                out.append(r.content)
                if note.situacao == NfeSituacao.EMITIDA_DANFE and note.modelo == 55:
                    doc = await bling.get(f"/Api/v3/nfe/documento/{note.chave}", auth,
                                          formato="xml")
                    out.append(doc.content)
            v2 = await http.get("/Api/v2/notasfiscais/json/",
                                params={"apikey": company.api_users[0].apikey})
            out.append(v2.content)
    return out


async def test_same_seed_same_bytes() -> None:
    first, second = await _snapshot(21), await _snapshot(21)
    assert len(first) > 20
    assert first == second


async def test_different_seed_different_data() -> None:
    assert await _snapshot(21) != await _snapshot(22)
