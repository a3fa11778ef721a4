"""The simulator's DANFE: a structurally valid one-page PDF and an escaped HTML page that show
the note's numbers. The PDF structure (xref offsets, stream length) is parsed here by hand."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from blingsync.simulator.danfe import build_danfe_html, build_danfe_pdf
from blingsync.simulator.model import (
    BRT,
    Address,
    Carrier,
    Company,
    Modelo,
    NfeSituacao,
    Note,
    NoteItem,
    Party,
    Product,
    Volume,
)

CHAVE = "35260312345678000195550010000045121123456789"


def _address(**overrides: str) -> Address:
    values = {
        "logradouro": "Rua das Flores",
        "numero": "120",
        "complemento": "Casa 2",
        "bairro": "Centro",
        "municipio": "São Paulo",
        "codigo_municipio": "3550308",
        "uf": "SP",
        "cep": "01001000",
    }
    values.update(overrides)
    return Address(**values)


def _item(sku: str, price: str, qty: str) -> NoteItem:
    product = Product(
        sku=sku,
        descricao=f"Camiseta {sku} (azul) \\ algodão",
        ean="7891234567895",
        ncm="61091000",
        cest="",
        unidade="UN",
        preco=Decimal(price),
        peso_liquido=Decimal("0.25"),
        peso_bruto=Decimal("0.3"),
        origem=0,
    )
    return NoteItem(product, Decimal(qty), Decimal(price), "5102", "", 0)


def make(items: int = 2) -> tuple[Company, Note]:
    company = Company(
        id=1,
        company_id="0" * 32,
        nome="Açaí & Cia (Matriz) Ltda",
        fantasia="Açaí",
        cnpj="12345678000195",
        ie="111222333444",
        crt=1,
        email="fiscal@acai.example",
        telefone="1133334444",
        endereco=_address(logradouro="Avenida Paulista", numero="1000", complemento=""),
        data_contrato=date(2023, 1, 1),
        products=[],
        stores=[],
        carriers=[],
        order_situations=[],
        clients=[],
        api_users=[],
    )
    recipient = Party(
        id=5,
        nome="João <Cliente> & Filhos — Ωmega",
        tipo_pessoa="F",
        documento="12345678909",
        ie="",
        rg="",
        contribuinte=9,
        telefone="11 99999-0000",
        email="joao@example.com",
        endereco=_address(),
    )
    emitted = datetime(2026, 3, 10, 14, 2, 31, tzinfo=BRT)
    note = Note(
        id=17891234567,
        modelo=Modelo.NFE,
        tipo=1,
        situacao=NfeSituacao.EMITIDA_DANFE,
        numero=4512,
        serie=1,
        emitted_at=emitted,
        operation_at=emitted,
        cnf="12345678",
        chave=CHAVE,
        natureza_operacao_id=1,
        natureza_operacao="Venda de mercadorias",
        finalidade=1,
        recipient=recipient,
        delivery=_address(logradouro="Rua do Entregador", numero="55"),
        items=[_item(f"SKU-{i}", "123.70", "2") for i in range(items)],
        volumes=[
            Volume(1, "Caixa", "Açaí", "1/2", Decimal("1.200"), Decimal("1.350"), 1),
            Volume(1, "Pacote", "", "2/2", Decimal("0.500"), Decimal("0.625"), 2),
        ],
        carrier=Carrier(7, "Correios", "34028316000103", "", "SBN Quadra 1", "Brasília", "DF"),
        frete_por_conta=0,
        valor_frete=Decimal("12.50"),
        store=None,
        numero_pedido_loja="2000012345678901",
        order_id=None,
        vendedor_id=0,
        pagamento="03",
        protocolo="135260000123456",
        authorized_at=datetime(2026, 3, 10, 14, 2, 45, tzinfo=BRT),
    )
    return company, note


def xref_offsets(pdf: bytes) -> dict[int, int]:
    """Object number -> offset, read from the file's own cross-reference table."""
    startxref = re.search(rb"startxref\n(\d+)\n%%EOF\s*$", pdf)
    assert startxref is not None
    at = int(startxref.group(1))
    assert pdf[at : at + 5] == b"xref\n"
    header = re.match(rb"xref\n(\d+) (\d+)\n", pdf[at:])
    assert header is not None
    first, count = int(header.group(1)), int(header.group(2))
    table = pdf[at + header.end() : at + header.end() + 20 * count]
    entries = [table[i : i + 20] for i in range(0, len(table), 20)]
    assert entries[0] == b"0000000000 65535 f \n"
    offsets: dict[int, int] = {}
    for number, entry in enumerate(entries[1:], start=first + 1):
        assert re.fullmatch(rb"\d{10} 00000 n \n", entry), entry
        offsets[number] = int(entry[:10])
    trailer = pdf[at + header.end() + 20 * count :]
    assert trailer.startswith(b"trailer\n")
    size = re.search(rb"/Size (\d+)", trailer)
    assert size is not None
    assert int(size.group(1)) == count
    return offsets


def content_stream(pdf: bytes) -> bytes:
    match = re.search(rb"<< /Length (\d+) >>\nstream\n", pdf)
    assert match is not None
    length = int(match.group(1))
    data = pdf[match.end() : match.end() + length]
    assert pdf[match.end() + length : match.end() + length + 10] == b"\nendstream"
    return data


def shown_text(stream: bytes) -> str:
    """The strings drawn with Tj, unescaped and decoded from WinAnsi."""
    out = []
    for raw in re.findall(rb"\(((?:\\.|[^\\)])*)\) Tj", stream):
        out.append(re.sub(rb"\\(.)", rb"\1", raw).decode("cp1252"))
    return "\n".join(out)


def test_pdf_structure_and_offsets() -> None:
    company, note = make()
    pdf = build_danfe_pdf(company, note)
    assert pdf.startswith(b"%PDF-1.4\n")
    assert pdf.rstrip().endswith(b"%%EOF")
    offsets = xref_offsets(pdf)
    assert sorted(offsets) == list(range(1, len(offsets) + 1))
    for number, offset in offsets.items():
        assert pdf[offset:].startswith(f"{number} 0 obj\n".encode()), number
    assert b"/MediaBox [0 0 595 842]" in pdf
    assert b"/BaseFont /Helvetica " in pdf
    assert b"/Encoding /WinAnsiEncoding" in pdf
    assert pdf.count(b"/Type /Page ") == 1


def test_pdf_shows_the_note() -> None:
    company, note = make()
    text = shown_text(content_stream(build_danfe_pdf(company, note)))
    assert "DANFE - Documento Auxiliar da Nota Fiscal Eletrônica" in text
    assert "3526 0312 3456 7800 0195 5500 1000 0045 1211 2345 6789" in text
    assert CHAVE in text.replace(" ", "")
    assert "Nº 000.004.512" in text
    assert "SÉRIE 001" in text
    assert "Açaí & Cia (Matriz) Ltda" in text
    assert "João <Cliente> & Filhos — ?mega" in text  # WinAnsi has "—" but not "Ω"
    assert "123.456.789-09" in text
    assert "Rua do Entregador, 55" in text
    assert "SKU-0" in text
    assert "SKU-1" in text
    assert "269,90" not in text  # two items of 247,40 + 12,50
    assert "507,30" in text  # vNF
    assert "1,350" in text  # peso bruto
    assert "0,625" in text
    assert "135260000123456 - 10/03/2026 14:02:45" in text
    assert "2000012345678901" in text


def test_pdf_escapes_string_specials() -> None:
    company, note = make()
    stream = content_stream(build_danfe_pdf(company, note))
    assert rb"(Camiseta SKU-0 \(azul\) \\ algod" in stream
    assert "Eletrônica".encode("cp1252") in stream


def test_pdf_deterministic() -> None:
    company, note = make()
    assert build_danfe_pdf(company, note) == build_danfe_pdf(company, note)


def test_pdf_many_items_still_one_valid_page() -> None:
    company, note = make(items=80)
    pdf = build_danfe_pdf(company, note)
    offsets = xref_offsets(pdf)
    for number, offset in offsets.items():
        assert pdf[offset:].startswith(f"{number} 0 obj\n".encode())
    assert "consulte o XML" in shown_text(content_stream(pdf))


def test_pdf_not_authorised_is_marked() -> None:
    company, note = make()
    note.situacao = NfeSituacao.PENDENTE
    assert "SEM VALOR FISCAL" in shown_text(content_stream(build_danfe_pdf(company, note)))


@pytest.mark.skipif(shutil.which("qpdf") is None, reason="qpdf is not installed")
def test_pdf_passes_qpdf_check(tmp_path: Path) -> None:
    company, note = make(items=30)
    path = tmp_path / "danfe.pdf"
    path.write_bytes(build_danfe_pdf(company, note))
    result = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_html_escaped_pt_br() -> None:
    company, note = make()
    page = build_danfe_html(company, note)
    assert page.startswith("<!DOCTYPE html>")
    assert '<html lang="pt-BR">' in page
    assert "João &lt;Cliente&gt; &amp; Filhos — Ωmega" in page
    assert "<Cliente>" not in page
    assert "Açaí &amp; Cia (Matriz) Ltda" in page
    assert "3526 0312 3456 7800 0195 5500 1000 0045 1211 2345 6789" in page
    assert "507,30" in page
    assert "1,350" in page
    assert "Rua do Entregador" in page
    assert page == build_danfe_html(company, note)


def test_html_not_authorised_is_marked() -> None:
    company, note = make()
    note.protocolo = ""
    assert "SEM VALOR FISCAL" in build_danfe_html(company, note)
