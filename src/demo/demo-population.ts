import { pick, type Random } from './random.js'

/** A simulated contact of the demo portal: a person of a client company. */
export interface DemoContact {
  /** The token's `sub`: `demo-00001` … */
  readonly id: string
  readonly clientId: string
  readonly name: string
  readonly company: string
  /** The language the contact reads the consent banner in. */
  readonly locale: string
}

export interface DemoPage {
  readonly path: string
  readonly title: string
}

/** The client companies of the demo portal, with the language their people use. */
export const DEMO_COMPANIES = [
  { clientId: 'demo-northwind', company: 'Northwind Traders', locale: 'en' },
  { clientId: 'demo-kaffeehaus', company: 'Kaffeehaus Berger GmbH', locale: 'de' },
  { clientId: 'demo-lumiere', company: 'Lumière Conseil SARL', locale: 'fr' },
  { clientId: 'demo-brightline', company: 'Brightline Logistics Ltd', locale: 'en' },
  { clientId: 'demo-solmar', company: 'Solmar Arquitectura', locale: 'es' },
  { clientId: 'demo-verdi', company: 'Verdi & Figli', locale: 'it' },
  { clientId: 'demo-harbor', company: 'Harbor Health Clinic', locale: 'en' },
  { clientId: 'demo-tulp', company: 'Tulp Webdesign B.V.', locale: 'nl' },
] as const

const FIRST_NAMES = [
  'Ann', 'Ben', 'Chloé', 'David', 'Elena', 'Farid', 'Greta', 'Hugo', 'Ines', 'Jonas', 'Karin', 'Luca', 'Maya', 'Noah', 'Olga', 'Pedro',
  'Quinn', 'Rosa', 'Sven', 'Tara', 'Umar', 'Vera', 'Wim', 'Xenia', 'Yusuf', 'Zoë', 'Amélie', 'Bruno', 'Clara', 'Dario', 'Eva', 'Felix',
]
const LAST_NAMES = [
  'Adler', 'Bianchi', 'Carter', 'Dubois', 'Eriksen', 'Fischer', 'García', 'Hansen', 'Ivanova', 'Janssen', 'Kowalski', 'Lambert', 'Moreau',
  'Nowak', 'Okafor', 'Petrov', 'Rossi', 'Santos', 'Schmidt', 'Torres', 'Visser', 'Weber', 'Young', 'Zimmermann', 'Brennan', 'Costa', 'Novak',
]

/**
 * `count` contacts with the same ids, names and companies on every start, so a returning one
 * keeps its activity log across restarts. No two of the first FIRST_NAMES × LAST_NAMES share a name.
 */
export function demoContacts(count: number): DemoContact[] {
  const contacts: DemoContact[] = []
  for (let i = 0; i < count; i += 1) {
    const company = DEMO_COMPANIES[i % DEMO_COMPANIES.length] as (typeof DEMO_COMPANIES)[number]
    // A step coprime to the number of last names walks every pairing before one repeats.
    const first = FIRST_NAMES[i % FIRST_NAMES.length] as string
    const last = LAST_NAMES[(i * 5 + Math.floor(i / FIRST_NAMES.length)) % LAST_NAMES.length] as string
    contacts.push({ id: `demo-${String(i + 1).padStart(5, '0')}`, clientId: company.clientId, name: `${first} ${last}`, company: company.company, locale: company.locale })
  }
  return contacts
}

/** The client portal's pages (Perfex CRM's client area); those with `detail` have pages of one item. */
const SECTIONS = [
  { path: '/clients/tickets', title: 'Support tickets', detail: { path: '/clients/ticket/', title: 'Ticket #' } },
  { path: '/clients/invoices', title: 'Invoices', detail: { path: '/clients/invoice/', title: 'Invoice INV-' } },
  { path: '/clients/projects', title: 'Projects', detail: { path: '/clients/project/', title: 'Project #' } },
  { path: '/clients/contracts', title: 'Contracts', detail: { path: '/clients/contract/', title: 'Contract #' } },
  { path: '/clients/estimates', title: 'Estimates', detail: undefined },
  { path: '/clients/proposals', title: 'Proposals', detail: undefined },
  { path: '/clients/knowledge_base', title: 'Knowledge base', detail: { path: '/clients/knowledge_base/article/', title: 'Article ' } },
  { path: '/clients/files', title: 'Files', detail: undefined },
  { path: '/clients/profile', title: 'Profile', detail: undefined },
] as const

/** The portal's home, where a visit usually starts. */
export const HOME_PAGE: DemoPage = { path: '/clients', title: 'Dashboard' }

/** Where a visit starts: mostly the home page, else a bookmarked section. */
export function firstPage(random: Random): DemoPage {
  if (random() < 0.6) return HOME_PAGE
  const section = pick(random, SECTIONS)
  return { path: section.path, title: section.title }
}

/**
 * The page a contact goes to from `from`: often an item of the section it is in, else another
 * section, sometimes back home; never `from` itself.
 */
export function nextPage(random: Random, from: DemoPage): DemoPage {
  const here = SECTIONS.find((section) => from.path === section.path)
  if (here?.detail !== undefined && random() < 0.45) {
    const item = 1000 + Math.floor(random() * 900)
    return { path: `${here.detail.path}${item}`, title: `${here.detail.title}${item}` }
  }
  if (from.path !== HOME_PAGE.path && random() < 0.15) return HOME_PAGE
  const others = SECTIONS.filter((section) => section.path !== from.path)
  const section = pick(random, others)
  return { path: section.path, title: section.title }
}
