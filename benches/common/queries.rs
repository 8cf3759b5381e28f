//! The buyer query mix the benches ask (query strings as `/api/v1/search` gets them): plain,
//! without diacritics, typos, prefixes, synonyms, filters, sorts, a later page.

pub const QUERIES: &[&str] = &[
    "q=m%C3%A0n+tuyn",
    "q=man+tuyn",
    "q=mat+ong",
    "q=gh%E1%BA%BF+g%E1%BB%97+xoan",
    "q=kham+trau",
    "q=tranh+kh%E1%BA%A3m",
    "q=m%C3%B9ng",
    "q=ch%C3%A9n",
    "q=bo+dua",
    "q=go+huong&sort=price_asc",
    "q=lua&village=lang-2",
    "q=gao&ocop_min=4",
    "q=ao+dai&price_max=200000",
    "q=polyeste",
    "q=thot&in_stock=true",
    "q=binh+hoa+son+m",
    "sort=newest",
    "q=non+la&page=3",
];

/// A query string of the mix as the search service parses it.
pub fn request(q: &str) -> cholang::search::SearchRequest {
    let p = form_urlencoded::parse(q.as_bytes()).into_owned().collect();
    cholang::search::SearchRequest::parse(&p).unwrap()
}
