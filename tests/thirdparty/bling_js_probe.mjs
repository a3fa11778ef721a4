// Drives the npm package `bling-erp-api` (a third-party Bling v3 client written for the real API)
// against whatever base URL it is given, using the library exactly as published: no patches, no
// interceptors, no private fields. test_thirdparty_clients.py runs it against the simulator and
// checks what it printed against the simulator's own truth.
//
// Usage: node bling_js_probe.mjs [BASE_URL] [ACCESS_TOKEN]
//   or   BLING_BASE_URL=... BLING_ACCESS_TOKEN=... node bling_js_probe.mjs
//
// Prints ONE JSON object on stdout. Exit 0 when every step worked; on a library exception,
// {"ok": false, "step": ..., "error": {...}} and exit 1 (exit 2 for a usage error).

import { createRequire } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'

import BlingModule from 'bling-erp-api'

const require = createRequire(import.meta.url)
const libraryVersion = require('bling-erp-api/package.json').version
// The package is CommonJS with `exports.default = Bling`; from ESM the default import is the
// whole `module.exports`.
const Bling = BlingModule.default ?? BlingModule

// Bling allows 3 requests per second per account, and the simulator enforces it. The library
// does not pace itself, so every call waits this long first (a sliding 1 s window never holds
// more than 3 calls spaced 350 ms apart).
const PACE_MS = 350
// How many notes' details to fetch: enough to compare chaves, few enough to stay fast.
const DETAILS = 3

const baseUrl = process.argv[2] ?? process.env.BLING_BASE_URL
const accessToken = process.argv[3] ?? process.env.BLING_ACCESS_TOKEN
if (!baseUrl || !accessToken) {
  process.stdout.write(JSON.stringify({
    ok: false,
    step: 'usage',
    error: { message: 'usage: node bling_js_probe.mjs BASE_URL ACCESS_TOKEN (or BLING_BASE_URL, BLING_ACCESS_TOKEN)' }
  }) + '\n')
  process.exit(2)
}

const bling = new Bling(accessToken, baseUrl)
let requests = 0
let step = 'start'

/** Runs one library call after the pacing pause, remembering which step is in flight. */
async function call (label, fn) {
  step = label
  await sleep(PACE_MS)
  requests += 1
  return await fn()
}

/** The library's two exception classes carry different things; keep what a caller would see. */
function describe (err) {
  return {
    name: err?.constructor?.name ?? typeof err,
    message: err?.message ?? String(err),
    response: err?.response ?? null
  }
}

async function main () {
  const out = { ok: true, library: { name: 'bling-erp-api', version: libraryVersion }, baseUrl }

  // NF-e in Emitida DANFE (v3 situacao 6), saída (tipo 1), page by page until an empty page.
  const ids = []
  const numeros = []
  let pagina = 1
  for (;;) {
    const page = await call(`nfes.get pagina=${pagina}`,
      () => bling.nfes.get({ situacao: 6, tipo: 1, pagina, limite: 100 }))
    if (page.data.length === 0) break
    for (const n of page.data) {
      ids.push(n.id)
      numeros.push(n.numero)
    }
    pagina += 1
  }
  out.nfe = { pages: pagina - 1, count: ids.length, ids, numeros }

  out.nfeDetails = []
  for (const id of ids.slice(0, DETAILS)) {
    const { data } = await call(`nfes.find ${id}`, () => bling.nfes.find({ idNotaFiscal: id }))
    out.nfeDetails.push({
      id: data.id,
      numero: data.numero,
      serie: data.serie,
      tipo: data.tipo,
      situacao: data.situacao,
      chaveAcesso: data.chaveAcesso,
      valorNota: data.valorNota,
      xml: data.xml,
      linkDanfe: data.linkDanfe
    })
  }

  // NFC-e: every page, then one detail.
  const nfceIds = []
  pagina = 1
  for (;;) {
    const page = await call(`nfces.get pagina=${pagina}`, () => bling.nfces.get({ pagina, limite: 100 }))
    if (page.data.length === 0) break
    nfceIds.push(...page.data.map((n) => n.id))
    pagina += 1
  }
  out.nfce = { count: nfceIds.length, ids: nfceIds, detail: null }
  if (nfceIds.length > 0) {
    const { data } = await call('nfces.find',
      () => bling.nfces.find({ idNotaFiscalConsumidor: nfceIds[0] }))
    out.nfce.detail = { id: data.id, numero: data.numero, serie: data.serie, chaveAcesso: data.chaveAcesso }
  }

  // Sales orders: the first page, and one order in full.
  const orders = await call('pedidosVendas.get', () => bling.pedidosVendas.get({ pagina: 1, limite: 100 }))
  out.orders = { firstPageCount: orders.data.length, firstIds: orders.data.slice(0, 5).map((o) => o.id) }
  // The newest order that has a note, so the logistics object below can point at both.
  let order = null
  for (const candidate of orders.data.slice(0, 5)) {
    const { data } = await call(`pedidosVendas.find ${candidate.id}`,
      () => bling.pedidosVendas.find({ idPedidoVenda: candidate.id }))
    order = data
    if (data.notaFiscal?.id) break
  }
  out.order = order && {
    id: order.id,
    numero: order.numero,
    situacaoId: order.situacao?.id,
    notaFiscalId: order.notaFiscal?.id ?? 0,
    total: order.total,
    itens: order.itens?.length ?? 0,
    volumeIds: (order.transporte?.volumes ?? []).map((v) => v.id)
  }

  // Situation modules, and the situations of the sales module.
  const modules = await call('situacoesModulos.getModules', () => bling.situacoesModulos.getModules())
  const vendas = modules.data.find((m) => m.nome === 'Vendas')
  out.modules = { names: modules.data.map((m) => m.nome), vendasId: vendas?.id ?? null, vendasSituations: [] }
  if (vendas) {
    const situations = await call('situacoesModulos.getModuleSituations',
      () => bling.situacoesModulos.getModuleSituations({ idModuloSistema: vendas.id }))
    out.modules.vendasSituations = situations.data.map((s) => ({ id: s.id, nome: s.nome }))
  }

  // The company behind the token.
  const company = await call('empresas.me', () => bling.empresas.me())
  out.company = company.data

  // A logistics object for that order and its note, with every field the library's ICreateBody
  // requires, then read back.
  const trackingCode = `PROBE${Date.now() % 1e9}BR`
  const body = {
    pedidoVenda: { id: order?.id ?? 0 },
    notaFiscal: { id: order?.notaFiscal?.id ?? 0 },
    servico: { id: 0 },
    rastreamento: {
      codigo: trackingCode,
      descricao: 'Postado pelo probe bling-erp-api',
      situacao: 1,
      origem: 'Centro de distribuição',
      destino: 'Destinatário',
      ultimaAlteracao: '2026-11-20 10:00:00',
      url: `https://rastreamento.example/${trackingCode}`
    },
    dimensoes: { peso: 1.25, altura: 10, largura: 20, comprimento: 30, diametro: 0 },
    embalagem: { id: 0 },
    dataSaida: '2026-11-21',
    prazoEntregaPrevisto: 5,
    fretePrevisto: 19.9,
    valorDeclarado: 120.5,
    avisoRecebimento: false,
    maoPropria: false
  }
  const created = await call('logisticasObjetos.create', () => bling.logisticasObjetos.create(body))
  const objectId = created.data.id
  const readBack = await call('logisticasObjetos.find',
    () => bling.logisticasObjetos.find({ idObjeto: objectId }))
  out.logisticsObject = { id: objectId, sent: body, readBack: readBack.data }

  // The library's `update` sends PATCH, a method Bling's v3 spec does not define for this path
  // (it has PUT). Recorded, not fatal: this is the library's deviation, and what matters to a
  // caller is that the refusal reaches it as a well-formed BlingApiException.
  try {
    await call('logisticasObjetos.update (PATCH)', () => bling.logisticasObjetos.update({
      idObjeto: objectId, rastreamento: { ...body.rastreamento, descricao: 'changed via PATCH' }
    }))
    out.libraryUpdate = { ok: true }
  } catch (err) {
    out.libraryUpdate = { ok: false, ...describe(err) }
  }

  out.requests = requests
  return out
}

try {
  const out = await main()
  process.stdout.write(JSON.stringify(out) + '\n')
} catch (err) {
  process.stdout.write(JSON.stringify({ ok: false, step, requests, error: describe(err) }) + '\n')
  process.exitCode = 1
}
