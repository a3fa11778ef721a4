"""A simplified DANFE of a simulated note: the PDF behind `linkPDF` and the HTML behind
`linkDanfe`.

Nothing reads these documents mechanically except people and "is it a PDF" checks, so they
aim at looking like a DANFE (the same boxes, labels and numbers as the XML) while staying
small and dependency-free: the PDF is written by hand (PDF 1.4, one A4 page, the standard
Helvetica fonts in WinAnsi encoding, an uncompressed content stream, exact xref offsets) and
is deterministic, like the XML, because nothing in it depends on the clock.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from blingsync.simulator.model import BRT, Address, Company, Modelo, Note, Party
from blingsync.simulator.nfexml import additional_info, note_taxes

__all__ = ["build_danfe_html", "build_danfe_pdf"]

_PAGE_W = 595  # A4 in points
_PAGE_H = 842
_MARGIN = 20
_CONTENT_W = _PAGE_W - 2 * _MARGIN

_MOD_FRETE = {
    0: "0 - Por conta do Remetente (CIF)",
    1: "1 - Por conta do Destinatário (FOB)",
    2: "2 - Por conta de Terceiros",
    3: "3 - Próprio por conta do Remetente",
    4: "4 - Próprio por conta do Destinatário",
    9: "9 - Sem Ocorrência de Transporte",
}
_PARTY_LABEL = "DESTINATÁRIO / REMETENTE"
_PORTAL = "Consulta de autenticidade no portal nacional da NF-e www.nfe.fazenda.gov.br/portal"

# Helvetica advance widths (1/1000 em) of the characters that are right-aligned (amounts);
# anything else is estimated at the width of a digit.
_WIDTHS = {**dict.fromkeys("0123456789", 556), ".": 278, ",": 278, "-": 333, " ": 278, "/": 278}


# ------------------------------------------------------------------------------- formatting


def _digits(value: str) -> str:
    return "".join(c for c in value if c.isdigit())


def _brl(value: Decimal, places: int = 2) -> str:
    """Brazilian number format: 1.234,56."""
    return f"{value:,.{places}f}".replace(",", "_").replace(".", ",").replace("_", ".")


def _unit_price(value: Decimal) -> str:
    """A unit price with as many decimals as it has (2 to 10), like vUnCom in the XML."""
    exponent = value.normalize().as_tuple().exponent
    places = 2 if not isinstance(exponent, int) else min(10, max(2, -exponent))
    return _brl(value, places)


def _document(value: str) -> str:
    """CPF 000.000.000-00 or CNPJ 00.000.000/0000-00; anything else as given."""
    d = _digits(value)
    if len(d) == 11:
        return f"{d[:3]}.{d[3:6]}.{d[6:9]}-{d[9:]}"
    if len(d) == 14:
        return f"{d[:2]}.{d[2:5]}.{d[5:8]}/{d[8:12]}-{d[12:]}"
    return value


def _cep(value: str) -> str:
    d = _digits(value)
    return f"{d[:5]}-{d[5:]}" if len(d) == 8 else value


def _chave(chave: str) -> str:
    """The access key in groups of four digits, as the DANFE prints it."""
    return " ".join(chave[i : i + 4] for i in range(0, len(chave), 4))


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=BRT)
    return aware.astimezone(BRT).strftime("%d/%m/%Y %H:%M:%S")


def _numero(numero: int) -> str:
    text = f"{numero:09d}"
    return f"{text[:3]}.{text[3:6]}.{text[6:]}"


def _street(address: Address) -> str:
    parts = [address.logradouro, address.numero]
    line = ", ".join(p for p in parts if p)
    return f"{line} - {address.complemento}" if address.complemento else line


def _title(note: Note) -> str:
    if note.modelo == Modelo.NFCE:
        return "DANFE NFC-e - Documento Auxiliar da Nota Fiscal de Consumidor Eletrônica"
    return "DANFE - Documento Auxiliar da Nota Fiscal Eletrônica"


def _protocol(note: Note) -> str:
    if not note.is_authorised:
        return ""
    return f"{note.protocolo} - {_when(note.authorized_at)}"


def _modelo_label(note: Note) -> str:
    return "NFC-e" if note.modelo == Modelo.NFCE else "NF-e"


# ------------------------------------------------------------------------------------ PDF


def _pdf_text(value: str) -> str:
    """A PDF literal string body in WinAnsi: characters outside cp1252 become "?", control
    characters blanks, and the three specials are escaped."""
    cleaned = "".join(" " if ord(c) < 0x20 else c for c in value)
    latin = cleaned.encode("cp1252", errors="replace").decode("cp1252")
    return latin.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _fit(value: str, width: float, size: float) -> str:
    """Cut `value` to what fits in `width` points at `size` (an average Helvetica glyph is
    about half an em wide), marking the cut with "..."."""
    limit = max(1, int(width / (size * 0.52)))
    return value if len(value) <= limit else value[: max(1, limit - 3)].rstrip() + "..."


def _width(value: str, size: float) -> float:
    return sum(_WIDTHS.get(c, 556) for c in value) * size / 1000


class _Page:
    """Drawing operations for one page, in a top-left coordinate system (PDF's origin is the
    bottom-left corner)."""

    def __init__(self) -> None:
        self._ops: list[str] = ["0.5 w"]

    def text(self, x: float, top: float, value: str, size: float = 8, bold: bool = False) -> None:
        baseline = _PAGE_H - top - size
        font = "F2" if bold else "F1"
        self._ops.append(f"BT /{font} {size:g} Tf {x:.2f} {baseline:.2f} Td ({_pdf_text(value)}) Tj ET")

    def text_right(self, right: float, top: float, value: str, size: float = 8) -> None:
        self.text(right - _width(value, size), top, value, size)

    def box(self, x: float, top: float, w: float, h: float) -> None:
        self._ops.append(f"{x:.2f} {_PAGE_H - top - h:.2f} {w:.2f} {h:.2f} re S")

    def field(
        self, x: float, top: float, w: float, label: str, value: str, h: float = 20, bold: bool = False
    ) -> None:
        """A labelled DANFE cell: small caps label at the top, the value below."""
        self.box(x, top, w, h)
        self.text(x + 2, top + 2, label, 5.5)
        self.text(x + 2, top + h - 10, _fit(value, w - 4, 8), 8, bold)

    def section(self, top: float, label: str) -> float:
        self.text(_MARGIN, top, label, 6.5, bold=True)
        return top + 9

    def content(self) -> bytes:
        return "\n".join(self._ops).encode("cp1252")


def _draw_header(page: _Page, company: Company, note: Note) -> float:
    page.text(_MARGIN, 18, _title(note), 11, bold=True)
    if not note.is_authorised:
        page.text(420, 18, "SEM VALOR FISCAL", 11, bold=True)
    top = 36.0
    # Emitter
    page.box(_MARGIN, top, 240, 92)
    page.text(_MARGIN + 4, top + 6, _fit(company.nome, 232, 9), 9, bold=True)
    if company.fantasia:
        page.text(_MARGIN + 4, top + 20, _fit(company.fantasia, 232, 7), 7)
    address = company.endereco
    page.text(_MARGIN + 4, top + 34, _fit(_street(address), 232, 7), 7)
    page.text(_MARGIN + 4, top + 44, _fit(f"{address.bairro} - CEP {_cep(address.cep)}", 232, 7), 7)
    page.text(_MARGIN + 4, top + 54, _fit(f"{address.municipio} - {address.uf}", 232, 7), 7)
    if company.telefone:
        page.text(_MARGIN + 4, top + 64, _fit(f"Fone: {company.telefone}", 232, 7), 7)
    # DANFE block
    x = _MARGIN + 240
    page.box(x, top, 100, 92)
    page.text(x + 28, top + 4, "DANFE", 14, bold=True)
    page.text(x + 6, top + 22, "Documento Auxiliar da", 6)
    kind = "Nota Fiscal de Consumidor" if note.modelo == Modelo.NFCE else "Nota Fiscal"
    page.text(x + 6, top + 29, f"{kind} Eletrônica", 6)
    page.text(x + 6, top + 40, "0 - ENTRADA", 6)
    page.text(x + 6, top + 47, "1 - SAÍDA", 6)
    page.box(x + 70, top + 39, 16, 14)
    page.text(x + 75, top + 42, str(note.tipo), 9, bold=True)
    page.text(x + 6, top + 60, f"Nº {_numero(note.numero)}", 8, bold=True)
    page.text(x + 6, top + 71, f"SÉRIE {note.serie:03d}", 8, bold=True)
    page.text(x + 6, top + 82, "FOLHA 1/1", 6)
    # Access key
    x = _MARGIN + 340
    w = _CONTENT_W - 340
    page.box(x, top, w, 92)
    page.text(x + 4, top + 4, "CHAVE DE ACESSO", 5.5)
    page.text(x + 4, top + 16, _chave(note.chave) if note.chave else "-", 7.5, bold=True)
    for i, line in enumerate(textwrap.wrap(_PORTAL, 52)):
        page.text(x + 4, top + 34 + 9 * i, line, 6.5)
    page.text(x + 4, top + 62, _modelo_label(note), 6.5)
    top += 92
    page.field(_MARGIN, top, 340, "NATUREZA DA OPERAÇÃO", note.natureza_operacao)
    page.field(_MARGIN + 340, top, w, "PROTOCOLO DE AUTORIZAÇÃO DE USO", _protocol(note))
    top += 20
    page.field(_MARGIN, top, 185, "INSCRIÇÃO ESTADUAL", company.ie)
    page.field(_MARGIN + 185, top, 185, "CNPJ", _document(company.cnpj))
    page.field(_MARGIN + 370, top, _CONTENT_W - 370, "REGIME TRIBUTÁRIO (CRT)", str(company.crt))
    return top + 26


def _draw_party(page: _Page, top: float, party: Party, note: Note) -> float:
    top = page.section(top, _PARTY_LABEL)
    page.field(_MARGIN, top, 335, "NOME / RAZÃO SOCIAL", party.nome)
    page.field(_MARGIN + 335, top, 120, "CNPJ / CPF", _document(party.documento))
    page.field(_MARGIN + 455, top, 100, "DATA DA EMISSÃO", _when(note.emitted_at)[:10])
    top += 20
    address = party.endereco
    page.field(_MARGIN, top, 255, "ENDEREÇO", _street(address))
    page.field(_MARGIN + 255, top, 120, "BAIRRO / DISTRITO", address.bairro)
    page.field(_MARGIN + 375, top, 80, "CEP", _cep(address.cep))
    page.field(_MARGIN + 455, top, 100, "DATA DA SAÍDA/ENTRADA", _when(note.operation_at)[:10])
    top += 20
    page.field(_MARGIN, top, 215, "MUNICÍPIO", address.municipio)
    page.field(_MARGIN + 215, top, 40, "UF", address.uf)
    page.field(_MARGIN + 255, top, 100, "FONE / FAX", party.telefone)
    page.field(_MARGIN + 355, top, 100, "INSCRIÇÃO ESTADUAL", party.ie)
    page.field(_MARGIN + 455, top, 100, "HORA DA SAÍDA", _when(note.operation_at)[11:])
    top += 26
    if note.delivery is not None:
        top = page.section(top, "INFORMAÇÕES DO LOCAL DE ENTREGA")
        delivery = note.delivery
        page.field(_MARGIN, top, 255, "ENDEREÇO", _street(delivery))
        page.field(_MARGIN + 255, top, 100, "BAIRRO / DISTRITO", delivery.bairro)
        page.field(_MARGIN + 355, top, 120, "MUNICÍPIO", delivery.municipio)
        page.field(_MARGIN + 475, top, 25, "UF", delivery.uf)
        page.field(_MARGIN + 500, top, 55, "CEP", _cep(delivery.cep))
        top += 26
    return top


def _draw_totals(page: _Page, top: float, company: Company, note: Note) -> float:
    taxes = note_taxes(company, note)
    top = page.section(top, "CÁLCULO DO IMPOSTO")
    cells = (
        ("BASE DE CÁLC. DO ICMS", sum((t.icms_base for t in taxes), Decimal(0))),
        ("VALOR DO ICMS", sum((t.icms_valor for t in taxes), Decimal(0))),
        ("V. TOTAL PRODUTOS", note.valor_produtos),
        ("VALOR DO FRETE", note.valor_frete),
        ("V. TOTAL DA NOTA", note.valor_nota),
    )
    w = _CONTENT_W / len(cells)
    for i, (label, value) in enumerate(cells):
        x = _MARGIN + i * w
        page.box(x, top, w, 20)
        page.text(x + 2, top + 2, label, 5.5)
        page.text_right(x + w - 3, top + 10, _brl(value), 8)
    return top + 26


def _draw_transport(page: _Page, top: float, note: Note) -> float:
    top = page.section(top, "TRANSPORTADOR / VOLUMES TRANSPORTADOS")
    carrier = note.carrier
    page.field(_MARGIN, top, 235, "NOME / RAZÃO SOCIAL", carrier.nome if carrier else "")
    page.field(
        _MARGIN + 235,
        top,
        160,
        "FRETE POR CONTA",
        _MOD_FRETE.get(note.frete_por_conta, str(note.frete_por_conta)),
    )
    page.field(_MARGIN + 395, top, 160, "CNPJ / CPF", _document(carrier.documento) if carrier else "")
    top += 20
    page.field(_MARGIN, top, 235, "ENDEREÇO", carrier.endereco if carrier else "")
    page.field(_MARGIN + 235, top, 160, "MUNICÍPIO", carrier.municipio if carrier else "")
    page.field(_MARGIN + 395, top, 40, "UF", carrier.uf if carrier else "")
    page.field(_MARGIN + 435, top, 120, "INSCRIÇÃO ESTADUAL", carrier.ie if carrier else "")
    top += 20
    columns = (
        ("QUANTIDADE", 70),
        ("ESPÉCIE", 110),
        ("MARCA", 110),
        ("NUMERAÇÃO", 95),
        ("PESO BRUTO", 85),
        ("PESO LÍQUIDO", 85),
    )
    shown = note.volumes[:4]
    rows: list[Sequence[str]] = [
        (str(v.quantidade), v.especie, v.marca, v.numeracao, _brl(v.peso_bruto, 3), _brl(v.peso_liquido, 3))
        for v in shown
    ]
    if len(note.volumes) > len(shown) or not rows:
        total_qty = sum(v.quantidade for v in note.volumes)
        rows.append(
            (
                str(total_qty),
                f"TOTAL ({len(note.volumes)} volumes)" if note.volumes else "",
                "",
                "",
                _brl(sum((v.peso_bruto for v in note.volumes), Decimal(0)), 3),
                _brl(sum((v.peso_liquido for v in note.volumes), Decimal(0)), 3),
            )
        )
    for row in rows:
        x = float(_MARGIN)
        for (label, w), value in zip(columns, row, strict=True):
            page.field(x, top, w, label, value)
            x += w
        top += 20
    return top + 6


def _draw_items(page: _Page, top: float, note: Note, bottom: float) -> float:
    top = page.section(top, "DADOS DOS PRODUTOS / SERVIÇOS")
    columns = (
        ("CÓDIGO", 60, False),
        ("DESCRIÇÃO DO PRODUTO / SERVIÇO", 205, False),
        ("NCM", 45, False),
        ("CFOP", 30, False),
        ("UN", 25, False),
        ("QUANT.", 55, True),
        ("V. UNITÁRIO", 65, True),
        ("V. TOTAL", 70, True),
    )
    row_h = 11
    page.box(_MARGIN, top, _CONTENT_W, row_h)
    x = float(_MARGIN)
    for label, w, right in columns:
        if right:
            page.text_right(x + w - 3, top + 3, label, 5.5)
        else:
            page.text(x + 2, top + 3, label, 5.5)
        x += w
    top += row_h
    rows_top = top
    capacity = int((bottom - top) // row_h)
    items = note.items
    shown = items if len(items) <= capacity else items[: max(0, capacity - 1)]
    for it in shown:
        values = (
            it.product.sku,
            it.product.descricao,
            it.product.ncm,
            it.cfop,
            it.product.unidade,
            _brl(it.quantidade, 4),
            _unit_price(it.valor_unitario),
            _brl(it.valor_total),
        )
        x = float(_MARGIN)
        for (_label, w, right), value in zip(columns, values, strict=True):
            if right:
                page.text_right(x + w - 3, top + 2, value, 7)
            else:
                page.text(x + 2, top + 2, _fit(value, w - 4, 7), 7)
            x += w
        top += row_h
    if len(shown) < len(items):
        hidden = len(items) - len(shown)
        page.text(_MARGIN + 2, top + 2, f"... e mais {hidden} item(ns): consulte o XML da nota.", 7)
        top += row_h
    page.box(_MARGIN, rows_top, _CONTENT_W, top - rows_top)
    return top


def _draw_additional(page: _Page, company: Company, note: Note, top: float) -> None:
    page.section(top - 9, "DADOS ADICIONAIS")
    h = _PAGE_H - _MARGIN - top
    page.box(_MARGIN, top, _CONTENT_W, h)
    page.text(_MARGIN + 2, top + 2, "INFORMAÇÕES COMPLEMENTARES", 5.5)
    lines = textwrap.wrap(additional_info(company, note), 140)
    max_lines = int((h - 12) // 8)
    for i, line in enumerate(lines[:max_lines]):
        page.text(_MARGIN + 3, top + 11 + 8 * i, line, 6.5)


def _pdf_document(content: bytes, title: str) -> bytes:
    """Assemble a one-page PDF around `content` with a correct cross-reference table."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {_PAGE_W} {_PAGE_H}] "
            "/Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>"
        ).encode("ascii"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        f"<< /Length {len(content)} >>\nstream\n".encode("ascii") + content + b"\nendstream",
        f"<< /Title ({_pdf_text(title)}) /Producer (blingsync simulador) >>".encode("cp1252"),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode("ascii") + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode("ascii")
    out += b"0000000000 65535 f \n"  # each entry is exactly 20 bytes
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode("ascii")
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\n"
        f"startxref\n{xref_at}\n%%EOF\n"
    ).encode("ascii")
    return bytes(out)


def build_danfe_pdf(company: Company, note: Note) -> bytes:
    """A one-page A4 PDF that looks like a simplified DANFE of `note`.

    Unlike the XML it does not refuse a note that is not authorised: it prints "SEM VALOR
    FISCAL" instead, as ERPs do for a preview. Same inputs give byte-identical output.
    """
    page = _Page()
    top = _draw_header(page, company, note)
    top = _draw_party(page, top, note.recipient, note)
    top = _draw_totals(page, top, company, note)
    top = _draw_transport(page, top, note)
    additional_top = _PAGE_H - _MARGIN - 70
    _draw_items(page, top, note, additional_top - 12)
    _draw_additional(page, company, note, additional_top)
    title = f"DANFE {_modelo_label(note)} {note.numero} serie {note.serie}"
    return _pdf_document(page.content(), title)


# ----------------------------------------------------------------------------------- HTML


def _cells(pairs: Sequence[tuple[str, str]]) -> str:
    return "".join(
        f'<td><span class="l">{html.escape(label)}</span>{html.escape(value)}</td>' for label, value in pairs
    )


def build_danfe_html(company: Company, note: Note) -> str:
    """The `linkDanfe` page: the same DANFE as simple, escaped, pt-BR HTML."""
    e = html.escape
    recipient = note.recipient
    address = recipient.endereco
    carrier = note.carrier
    taxes = note_taxes(company, note)
    rows: list[str] = []
    for it in note.items:
        values = (
            it.product.sku,
            it.product.descricao,
            it.product.ncm,
            it.cfop,
            it.product.unidade,
            _brl(it.quantidade, 4),
            _unit_price(it.valor_unitario),
            _brl(it.valor_total),
        )
        rows.append("<tr>" + "".join(f"<td>{e(v)}</td>" for v in values) + "</tr>")
    volumes = [
        "<tr>"
        + "".join(
            f"<td>{e(v)}</td>"
            for v in (
                str(vol.quantidade),
                vol.especie,
                vol.marca,
                vol.numeracao,
                _brl(vol.peso_bruto, 3),
                _brl(vol.peso_liquido, 3),
            )
        )
        + "</tr>"
        for vol in note.volumes
    ]
    delivery = ""
    if note.delivery is not None:
        d = note.delivery
        delivery = (
            "<h2>Informações do local de entrega</h2><table><tr>"
            + _cells(
                [
                    ("Endereço", _street(d)),
                    ("Bairro", d.bairro),
                    ("Município", d.municipio),
                    ("UF", d.uf),
                    ("CEP", _cep(d.cep)),
                ]
            )
            + "</tr></table>"
        )
    banner = "" if note.is_authorised else '<p class="banner">SEM VALOR FISCAL</p>'
    parts = [
        '<!DOCTYPE html>\n<html lang="pt-BR"><head><meta charset="utf-8">',
        f"<title>DANFE {e(_modelo_label(note))} nº {note.numero} - {e(company.nome)}</title>",
        "<style>body{font-family:Helvetica,Arial,sans-serif;font-size:12px;margin:16px}"
        "table{border-collapse:collapse;width:100%;margin-bottom:8px}"
        "td,th{border:1px solid #000;padding:2px 4px;vertical-align:top;text-align:left}"
        ".l{display:block;font-size:8px;text-transform:uppercase}"
        "h1{font-size:16px}h2{font-size:11px;margin:8px 0 2px;text-transform:uppercase}"
        ".chave{font-family:monospace;font-size:14px;font-weight:bold}.banner{color:#b00;font-weight:bold}"
        "</style></head><body>",
        f"<h1>{e(_title(note))}</h1>",
        banner,
        "<table><tr>",
        f"<td><strong>{e(company.nome)}</strong><br>{e(company.fantasia)}<br>{e(_street(company.endereco))}<br>"
        f"{e(company.endereco.bairro)} - CEP {e(_cep(company.endereco.cep))}<br>"
        f"{e(company.endereco.municipio)} - {e(company.endereco.uf)}</td>",
        f"<td><strong>DANFE</strong><br>{note.tipo} - {'SAÍDA' if note.tipo == 1 else 'ENTRADA'}<br>"
        f"Nº {_numero(note.numero)}<br>SÉRIE {note.serie:03d}</td>",
        f'<td><span class="l">Chave de acesso</span><span class="chave">{e(_chave(note.chave))}</span>'
        f"<br>{e(_PORTAL)}</td>",
        "</tr></table><table><tr>",
        _cells(
            [
                ("Natureza da operação", note.natureza_operacao),
                ("Protocolo de autorização de uso", _protocol(note)),
            ]
        ),
        "</tr><tr>",
        _cells([("Inscrição estadual", company.ie), ("CNPJ", _document(company.cnpj))]),
        "</tr></table>",
        f"<h2>{e(_PARTY_LABEL)}</h2><table><tr>",
        _cells(
            [
                ("Nome / razão social", recipient.nome),
                ("CNPJ / CPF", _document(recipient.documento)),
                ("Data da emissão", _when(note.emitted_at)),
            ]
        ),
        "</tr><tr>",
        _cells(
            [
                ("Endereço", _street(address)),
                ("Bairro / distrito", address.bairro),
                ("CEP", _cep(address.cep)),
            ]
        ),
        "</tr><tr>",
        _cells([("Município", address.municipio), ("UF", address.uf), ("Fone", recipient.telefone)]),
        "</tr></table>",
        delivery,
        "<h2>Cálculo do imposto</h2><table><tr>",
        _cells(
            [
                ("Base de cálc. do ICMS", _brl(sum((t.icms_base for t in taxes), Decimal(0)))),
                ("Valor do ICMS", _brl(sum((t.icms_valor for t in taxes), Decimal(0)))),
                ("V. total produtos", _brl(note.valor_produtos)),
                ("Valor do frete", _brl(note.valor_frete)),
                ("V. total da nota", _brl(note.valor_nota)),
            ]
        ),
        "</tr></table>",
        "<h2>Transportador / volumes transportados</h2><table><tr>",
        _cells(
            [
                ("Nome / razão social", carrier.nome if carrier else ""),
                ("Frete por conta", _MOD_FRETE.get(note.frete_por_conta, str(note.frete_por_conta))),
                ("CNPJ / CPF", _document(carrier.documento) if carrier else ""),
            ]
        ),
        "</tr></table><table><tr><th>Quantidade</th><th>Espécie</th><th>Marca</th><th>Numeração</th>"
        "<th>Peso bruto</th><th>Peso líquido</th></tr>",
        *volumes,
        "</table>",
        "<h2>Dados dos produtos / serviços</h2><table><tr><th>Código</th><th>Descrição</th><th>NCM</th>"
        "<th>CFOP</th><th>UN</th><th>Quant.</th><th>V. unitário</th><th>V. total</th></tr>",
        *rows,
        "</table>",
        "<h2>Dados adicionais</h2><table><tr>",
        _cells([("Informações complementares", additional_info(company, note))]),
        "</tr></table></body></html>\n",
    ]
    return "".join(parts)
