//! The sandbox: emulated BigCommerce (control panel, token endpoint, REST API, storefront), Klaviyo and
//! Algolia, on loopback ports, with seeded demo data. `profile-bridge demo` runs it beside the app; the
//! end-to-end tests and the benchmark reuse it. Each emulator has its own wire types.

pub mod algolia;
pub mod bigcommerce;
pub mod demo;
pub mod klaviyo;
pub mod pages;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use serde_json::json;

use algolia::{AlgoliaState, ContextRule, Product, SandboxKey};
use bigcommerce::{BcState, StorefrontAlgolia};
use klaviyo::{KlaviyoState, SandboxProfile};

pub const KLAVIYO_KEY: &str = "pk_demo_private_key_0123456789abcd";
pub const ALGOLIA_APP: &str = "DEMOAPP";
pub const ALGOLIA_INDEX: &str = "products";
pub const ALGOLIA_SEARCH_KEY: &str = "demo-search-only-key-0001";
pub const ALGOLIA_ADMIN_KEY: &str = "demo-admin-key-0001";
pub const CAROL_KX: &str = "Q2Fyb2xFeGNoYW5nZUlk==.DEMO01";

/// Alice is a VIP in the UK, Bob a regular, Carol a VIP who arrives from a Klaviyo email as a guest.
pub fn demo_profiles() -> Vec<SandboxProfile> {
    let profile = |id: &str,
                   email: &str,
                   name: &str,
                   kx: Option<&str>,
                   vip: bool,
                   country: &str,
                   clv: f64| SandboxProfile {
        id: id.into(),
        email: email.into(),
        external_id: None,
        exchange_id: kx.map(str::to_owned),
        first_name: name.into(),
        properties: json!({"vip": vip, "favourite_category": if vip { "camping" } else { "running" }}),
        location: json!({"country": country, "city": if country == "United Kingdom" { "Leeds" } else { "Denver" }}),
        predictive: json!({"historic_clv": clv, "predicted_clv": clv / 2.0, "churn_probability": 0.1}),
    };
    vec![
        profile(
            "01JALICE000000000000000001",
            "alice@demo.test",
            "Alice",
            None,
            true,
            "United Kingdom",
            1200.0,
        ),
        profile(
            "01JBOB00000000000000000002",
            "bob@demo.test",
            "Bob",
            None,
            false,
            "United States",
            80.0,
        ),
        profile(
            "01JCAROL000000000000000003",
            "carol@demo.test",
            "Carol",
            Some(CAROL_KX),
            true,
            "United States",
            640.0,
        ),
    ]
}

pub fn demo_catalogue() -> (Vec<Product>, Vec<ContextRule>) {
    let p = |id: &str, name: &str, category: &str, price: f64| Product {
        object_id: id.into(),
        name: name.into(),
        category: category.into(),
        price,
    };
    let products = vec![
        p("p-trail-runner", "Trail Runner Shoes", "running", 89.0),
        p("p-daypack", "Daypack 20L", "hiking", 59.0),
        p("p-rain-shell", "Storm Rain Shell", "jackets", 129.0),
        p("p-starter-kit", "Camping Starter Kit", "camping", 99.0),
        p("p-headlamp", "Headlamp 300", "camping", 29.0),
        p("p-water-bottle", "Insulated Bottle", "hiking", 25.0),
        p(
            "p-vip-tent",
            "Summit 2 Ultralight Tent (VIP pick)",
            "camping",
            449.0,
        ),
        p(
            "p-vip-jacket",
            "Alpine Down Jacket (VIP pick)",
            "jackets",
            329.0,
        ),
        p(
            "p-vip-boots",
            "Expedition Boots (VIP pick)",
            "hiking",
            279.0,
        ),
        p("p-socks", "Merino Socks", "hiking", 19.0),
    ];
    let rules = vec![
        ContextRule {
            context: "vip".into(),
            description: "VIP picks first".into(),
            promote: vec![
                "p-vip-tent".into(),
                "p-vip-jacket".into(),
                "p-vip-boots".into(),
            ],
        },
        ContextRule {
            context: "uk".into(),
            description: "Rainwear for the UK".into(),
            promote: vec!["p-rain-shell".into()],
        },
        ContextRule {
            context: "guest".into(),
            description: "Starter kit for new shoppers".into(),
            promote: vec!["p-starter-kit".into()],
        },
    ];
    (products, rules)
}

async fn serve(
    listener: TcpListener,
    configure: impl Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
) -> anyhow::Result<ServerHandle> {
    let server = HttpServer::new(move || App::new().configure(configure.clone()))
        .workers(2)
        .disable_signals()
        .listen(listener)
        .context("Failed to listen")?
        .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok(handle)
}

fn bind() -> anyhow::Result<(TcpListener, u16)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("Failed to bind a loopback port")?;
    let port = listener.local_addr()?.port();
    Ok((listener, port))
}

pub struct Sandbox {
    pub control_panel_url: String,
    pub storefront_url: String,
    pub klaviyo_url: String,
    pub algolia_url: String,
    pub bigcommerce: Arc<BcState>,
    pub klaviyo: Arc<KlaviyoState>,
    handles: Vec<ServerHandle>,
}

pub struct SandboxOptions {
    pub app_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub klaviyo_profiles: Vec<SandboxProfile>,
    pub klaviyo_latency: Duration,
}

impl Sandbox {
    pub async fn start(options: SandboxOptions) -> anyhow::Result<Self> {
        let (cp_listener, cp_port) = bind()?;
        let (sf_listener, sf_port) = bind()?;
        let (kl_listener, kl_port) = bind()?;
        let (al_listener, al_port) = bind()?;
        let control_panel_url = format!("http://127.0.0.1:{cp_port}");
        // Another host name: the storefront is a different origin from the control panel and the app.
        let storefront_url = format!("http://localhost:{sf_port}");
        let klaviyo_url = format!("http://127.0.0.1:{kl_port}");
        let algolia_url = format!("http://127.0.0.1:{al_port}");

        let bc = Arc::new(BcState {
            store_hash: "demo1".into(),
            store_name: "Demo Outdoor Co.".into(),
            client_id: options.client_id,
            client_secret: options.client_secret,
            app_url: options.app_url,
            control_panel_url: control_panel_url.clone(),
            storefront_url: storefront_url.clone(),
            klaviyo_link_kx: CAROL_KX.into(),
            inner: Mutex::new(Default::default()),
        });
        let klaviyo = KlaviyoState::new(
            vec![KLAVIYO_KEY.into()],
            options.klaviyo_profiles,
            options.klaviyo_latency,
        );
        let (products, rules) = demo_catalogue();
        let algolia = Arc::new(AlgoliaState {
            app_id: ALGOLIA_APP.into(),
            keys: vec![
                SandboxKey {
                    value: ALGOLIA_SEARCH_KEY.into(),
                    acl: vec!["search".into()],
                    indexes: vec![],
                },
                SandboxKey {
                    value: ALGOLIA_ADMIN_KEY.into(),
                    acl: [
                        "search",
                        "addObject",
                        "deleteObject",
                        "deleteIndex",
                        "editSettings",
                    ]
                    .map(String::from)
                    .to_vec(),
                    indexes: vec![],
                },
            ],
            index: ALGOLIA_INDEX.into(),
            products,
            rules,
        });
        let storefront_algolia = Arc::new(StorefrontAlgolia {
            url: algolia_url.clone(),
            app_id: ALGOLIA_APP.into(),
            index: ALGOLIA_INDEX.into(),
            public_key: ALGOLIA_SEARCH_KEY.into(),
        });

        let mut handles = Vec::new();
        let state = web::Data::new(bc.clone());
        let cp_state = state.clone();
        handles.push(
            serve(cp_listener, move |cfg| {
                cfg.app_data(cp_state.clone());
                bigcommerce::configure_control_panel(cfg);
            })
            .await?,
        );
        let sf_state = state.clone();
        let sf_algolia = web::Data::from(storefront_algolia);
        handles.push(
            serve(sf_listener, move |cfg| {
                cfg.app_data(sf_state.clone()).app_data(sf_algolia.clone());
                bigcommerce::configure_storefront(cfg);
            })
            .await?,
        );
        let kl_state = web::Data::new(klaviyo.clone());
        handles.push(
            serve(kl_listener, move |cfg| {
                cfg.app_data(kl_state.clone());
                klaviyo::configure(cfg);
            })
            .await?,
        );
        let al_state = web::Data::new(algolia);
        handles.push(
            serve(al_listener, move |cfg| {
                cfg.app_data(al_state.clone());
                algolia::configure(cfg);
            })
            .await?,
        );
        Ok(Self {
            control_panel_url,
            storefront_url,
            klaviyo_url,
            algolia_url,
            bigcommerce: bc,
            klaviyo,
            handles,
        })
    }

    pub async fn stop(&self) {
        for handle in &self.handles {
            handle.stop(true).await;
        }
    }
}
